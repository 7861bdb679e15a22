"""What every pytest suite and bench script shares: where the repo and the
cargo target folder are, the local stack's addresses (one reader of
local/ports.env), free ports, cargo builds, the test photos, and waiting on
events with budgets for a slow machine (support.waiting)."""

from support.local import (ROOT, cargo_build, closed_port, free_addr, free_port, photos_dir, ports_env, resolve_iam,
                           state_dir, target_dir)
from support.waiting import WaitTimeout, budget, wait_until

__all__ = ["ROOT", "WaitTimeout", "budget", "cargo_build", "closed_port", "free_addr", "free_port", "photos_dir", "ports_env",
           "resolve_iam", "state_dir", "target_dir", "wait_until"]
