"""Load testing with Locust: Vapi-shaped call sessions, exact voice-latency percentiles, SLO gates.

Only this package imports `locust` (which patches the process with gevent), and only in the modules that need
it; `stats`, `slo` and `profiles` are plain Python so the rest of vapi-harness can use them.
"""
