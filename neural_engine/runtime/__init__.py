"""Runtime: frame sources behind one interface, input drivers, the fixed-tick loop,
and recording. The loop never sees latents or simulator internals."""
