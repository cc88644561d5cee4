"""The mock Vapi REST API: SQLite storage (`store`), Vapi's 400s (`validate`), credentials and assistants
(`resources`), chats, simulated calls, the model each reaches (`llm`) and the routes (`app`)."""
