"""The coordinator: model description, time, planning, routing, scheduling, transports, run file."""
