"""Events: detector results -> event state machine -> clip, snapshots and record -> outbox.

The tracker decides events; the writer cuts their files from recorded segments (custody: the journal
and holds keep them safe across kill -9); the outbox hands records to agent.upload.
"""
