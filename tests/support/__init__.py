"""What every pytest suite and bench script shares: where the repo and the
cargo target folder are, the local stack's addresses (one reader of
local/ports.env), free ports, cargo builds and the test photos."""

from support.local import (ROOT, cargo_build, free_addr, free_port, photos_dir, ports_env, resolve_iam, state_dir,
                           target_dir)

__all__ = ["ROOT", "cargo_build", "free_addr", "free_port", "photos_dir", "ports_env", "resolve_iam", "state_dir",
           "target_dir"]
