"""The user's tools: the ``emu`` command line, the teaching console, the trace renderer,
the quick benchmark and the verifier.  Tools choose firmware and options and use the
board's public surface only."""
