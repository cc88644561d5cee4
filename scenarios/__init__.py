"""The scenario suites shipped with vapi-harness: `vapi-harness check --suite conversations` finds them here."""
