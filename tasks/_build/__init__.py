"""npm builds of generated projects in the bubblewrap sandbox (DESIGN §6); :mod:`tasks._build.npm` runs one."""
