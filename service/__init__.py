"""leadgate's application core: the operations every caller (HTTP API, CLI, benchmarks) shares.

Deciding (merge, evaluate, assign, record), outcomes and SLA escalation (`decide`), ruleset reloads
(`deploy`), the decision diff (`diff`), suggestions from outcomes (`suggest`), reports (`reports`) and
configuration (`config`). It knows no HTTP: `api/` and `cli/` are thin faces over it.
"""
