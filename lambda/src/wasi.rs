//! Running `resizer.wasm` under wasmtime with hard memory and time caps.
//!
//! The engine, the compiled module and the pre-linked instance are built once
//! per container (Lambda reuses it for many invocations); each image gets a
//! fresh `Store`, so nothing from one image can leak into the next.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use pixport_contract::{Failure, Manifest};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, InstancePre, Linker, Module, ResourceLimiter, Store, StoreLimits,
    StoreLimitsBuilder, Trap,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

use crate::error::{Error, Result};

/// How often the epoch advances; the time cap is rounded up to this.
const TICK: Duration = Duration::from_millis(5);
/// The module writes all variants to stdout; 3 variants of a 16k-wide source
/// stay far below this, and the cap stops a runaway module from eating RAM.
const STDOUT_CAP: usize = 256 << 20;
const STDERR_CAP: usize = 64 << 10;

/// Engine settings shared by the precompiler and the runtime: a `.cwasm` only
/// loads into an engine whose settings match the one that produced it.
pub fn engine_config() -> Config {
    let mut c = Config::new();
    c.epoch_interruption(true);
    c
}

/// Instance slots in the pool: records are resized one at a time, so one is
/// in use at once; the rest is headroom for callers that run several.
const POOL_SLOTS: u32 = 2;
/// Linear memory kept mapped between runs, cleared with `memset` instead of
/// being handed back to the kernel: a 24 MP photo touches ~20 MiB, and
/// faulting those pages in again on every invocation cost ~5% of its time.
const KEEP_RESIDENT: usize = 128 << 20;

/// The runtime's engine: `engine_config` plus a pooling instance allocator,
/// so a warm Lambda process reuses one memory slot (pages already mapped)
/// for every invocation. Allocation strategy is not part of a `.cwasm`'s
/// compatibility, so the precompiler does not need it.
fn runtime_config() -> Config {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    // Every pool is sized (and its guard pages set up at start) for its
    // total, and the defaults are 1000 of each: keep them all at ours.
    pool.total_memories(POOL_SLOTS)
        .total_core_instances(POOL_SLOTS)
        .total_tables(POOL_SLOTS)
        .total_stacks(POOL_SLOTS)
        .total_component_instances(POOL_SLOTS)
        // The largest cap `PIXPORT_MEMORY_MIB` allows (wasm32's 4 GiB); each
        // run's own cap is enforced by its `StoreLimits`.
        .max_memory_size(4 << 30)
        .linear_memory_keep_resident(KEEP_RESIDENT);
    let mut c = engine_config();
    c.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
    c
}

/// Serialises `wasm` for `target` (a triple such as `aarch64-unknown-linux-gnu`),
/// enabling CPU features every Lambda host of that architecture has, so the
/// output runs on any of them and none of the code falls back to baseline.
pub fn precompile(wasm: &[u8], target: Option<&str>) -> Result<Vec<u8>> {
    let err = |e: wasmtime::Error| Error::Config(format!("precompile: {e:#}"));
    let mut c = engine_config();
    if let Some(t) = target {
        c.target(t).map_err(err)?;
        let flags: &[&str] = if t.starts_with("x86_64") {
            // Lambda's x86_64 fleet is Haswell-or-newer Intel and Zen AMD.
            &[
                "has_sse3",
                "has_ssse3",
                "has_sse41",
                "has_sse42",
                "has_popcnt",
                "has_avx",
                "has_avx2",
                "has_bmi1",
                "has_bmi2",
                "has_lzcnt",
                "has_fma",
            ]
        } else if t.starts_with("aarch64") {
            // Graviton2 and later (Neoverse N1+): ARMv8.2 atomics.
            &["has_lse"]
        } else {
            &[]
        };
        for f in flags {
            // SAFETY: these features are present on every CPU the artifact is
            // deployed to (see above); wasmtime re-checks them at load time.
            unsafe {
                c.cranelift_flag_enable(f);
            }
        }
    }
    let engine = Engine::new(&c).map_err(err)?;
    engine.precompile_module(wasm).map_err(err)
}

struct State {
    wasi: WasiP1Ctx,
    limits: CapLimiter,
}

/// `StoreLimits` plus a note of whether it refused anything, because the
/// module only sees a failed `memory.grow` and dies with a generic trap; the
/// note is what lets us call that `over_limits` instead of a crash.
struct CapLimiter {
    inner: StoreLimits,
    refused: AtomicBool,
}

impl ResourceLimiter for CapLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = self.inner.memory_growing(current, desired, maximum)?;
        if !ok {
            self.refused.store(true, Ordering::Relaxed);
        }
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }
}

/// The module's framed stdout: the manifest line (its shape is the
/// contract's), then the variants' bytes.
#[derive(Debug, Clone)]
pub struct ResizeOutput {
    pub manifest: Manifest,
    /// One buffer per manifest variant, sliced from stdout without copying.
    pub payloads: Vec<Bytes>,
    /// Time spent inside the module (instantiate + run), for the benchmark.
    pub module_time: Duration,
}

#[derive(Debug, Clone)]
pub struct RunLimits {
    pub memory_bytes: usize,
    pub time: Duration,
}

pub struct WasiRunner {
    engine: Engine,
    pre: InstancePre<State>,
}

impl WasiRunner {
    /// Loads a `.cwasm` without compiling (the cold-start path) or compiles a
    /// `.wasm` (local development, where there is no packaging step).
    pub fn load(path: &Path) -> Result<Self> {
        let err = |e: wasmtime::Error| Error::Config(format!("module {}: {e:#}", path.display()));
        let engine = Engine::new(&runtime_config()).map_err(err)?;
        let module = if path.extension().is_some_and(|e| e == "cwasm") {
            // SAFETY: the file is our own packaging output (a `.cwasm` from
            // `bootstrap --precompile`), shipped read-only in the zip;
            // wasmtime still checks its header and engine compatibility.
            unsafe { Module::deserialize_file(&engine, path) }.map_err(err)?
        } else {
            Module::from_file(&engine, path).map_err(err)?
        };
        Self::new(engine, &module)
    }

    fn new(engine: Engine, module: &Module) -> Result<Self> {
        let err = |e: wasmtime::Error| Error::Config(format!("link: {e:#}"));
        let mut linker: Linker<State> = Linker::new(&engine);
        p1::add_to_linker_sync(&mut linker, |s| &mut s.wasi).map_err(err)?;
        let pre = linker.instantiate_pre(module).map_err(err)?;
        let weak = engine.weak();
        // Epoch interruption needs someone to advance the clock; the thread
        // ends with the engine.
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(TICK);
                }
            })
            .map_err(|e| Error::Config(format!("ticker thread: {e}")))?;
        Ok(Self { engine, pre })
    }

    /// Runs the module once. Blocking (CPU-bound, and WASI's sync adapter
    /// drives its own I/O): call it from `spawn_blocking`.
    pub fn run(&self, input: Bytes, args: &[String], limits: &RunLimits) -> Result<ResizeOutput> {
        let started = std::time::Instant::now();
        let stdout = MemoryOutputPipe::new(STDOUT_CAP);
        let stderr = MemoryOutputPipe::new(STDERR_CAP);
        let wasi = WasiCtxBuilder::new()
            .stdin(MemoryInputPipe::new(input))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .arg("resizer")
            .args(args)
            .build_p1();
        let limits_inner = StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .instances(1)
            .build();
        let mut store = Store::new(
            &self.engine,
            State {
                wasi,
                limits: CapLimiter {
                    inner: limits_inner,
                    refused: AtomicBool::new(false),
                },
            },
        );
        store.limiter(|s| &mut s.limits);
        let ticks = limits.time.as_millis().div_ceil(TICK.as_millis()).max(1) as u64 + 1;
        store.set_epoch_deadline(ticks);

        let result = self.pre.instantiate(&mut store).and_then(|instance| {
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call(&mut store, ())
        });
        let refused = store.data().limits.refused.load(Ordering::Relaxed);
        drop(store);
        let module_time = started.elapsed();

        let code = match result {
            Ok(()) => 0,
            Err(e) => {
                if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                    exit.0
                } else if refused {
                    return Err(Error::resize(
                        Failure::OverLimits,
                        format!(
                            "memory cap of {} MiB reached: {e}",
                            limits.memory_bytes >> 20
                        ),
                    ));
                } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
                    return Err(Error::resize(
                        Failure::Timeout,
                        format!("time cap of {} ms reached", limits.time.as_millis()),
                    ));
                } else {
                    let detail = stderr_message(&stderr.contents()).unwrap_or_default();
                    return Err(Error::resize(
                        Failure::Internal,
                        format!("module trapped: {e:#} {detail}")
                            .trim_end()
                            .to_owned(),
                    ));
                }
            }
        };
        if code != 0 {
            return Err(module_error(code, &stderr.contents()));
        }
        // One copy of a few MB; negligible next to the resize itself.
        parse_output(stdout.contents(), module_time)
    }
}

fn stderr_message(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    Some(line.chars().take(300).collect())
}

/// The module's own failure: one JSON line on stderr naming the class; the
/// exit code is the fallback when a panic or abort left no such line.
fn module_error(code: i32, stderr: &[u8]) -> Error {
    #[derive(Deserialize)]
    struct Body {
        class: String,
        #[serde(default)]
        message: String,
    }
    #[derive(Deserialize)]
    struct Wrapper {
        error: Body,
    }
    let text = String::from_utf8_lossy(stderr);
    if let Some(w) = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Wrapper>(l.trim()).ok())
    {
        return Error::resize(Failure::from_class(&w.error.class), w.error.message);
    }
    // The module's exit codes (resizer-wasi's `main`): 2 usage and 6 I/O
    // are the host's mistakes, recorded as internal.
    let failure = match code {
        3 => Failure::UnsupportedFormat,
        4 => Failure::Corrupt,
        5 => Failure::OverLimits,
        _ => Failure::Internal,
    };
    Error::resize(
        failure,
        format!(
            "exit code {code}: {}",
            stderr_message(stderr).unwrap_or_default()
        ),
    )
}

/// Splits the module's stdout into the manifest and each variant's bytes,
/// and checks every variant before anything is stored: the sandbox is not
/// trusted about what it wrote, so its bytes must lie inside the payload,
/// hash to the SHA-256 the manifest states and begin with the magic number
/// of the format it names (which alone decides the stored content type).
/// A mismatch is the module misbehaving: `internal`, not retried.
pub fn parse_output(out: Bytes, module_time: Duration) -> Result<ResizeOutput> {
    let bad = |m: String| Error::resize(Failure::Internal, format!("bad module output: {m}"));
    let nl = out
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad("no manifest line".into()))?;
    let manifest: Manifest = serde_json::from_slice(&out[..nl]).map_err(|e| bad(e.to_string()))?;
    let payload = out.slice(nl + 1..);
    let mut payloads = Vec::with_capacity(manifest.variants.len());
    for v in &manifest.variants {
        let start = usize::try_from(v.offset).map_err(|e| bad(e.to_string()))?;
        let end = start
            .checked_add(usize::try_from(v.bytes).map_err(|e| bad(e.to_string()))?)
            .ok_or_else(|| bad("overflow".into()))?;
        if end > payload.len() {
            return Err(bad(format!(
                "variant {} ends at {end}, payload has {}",
                v.width,
                payload.len()
            )));
        }
        let bytes = payload.slice(start..end);
        if !v.format.has_signature(&bytes) {
            return Err(bad(format!(
                "variant {} is not a {} file",
                v.width,
                v.format.as_str()
            )));
        }
        let sha = Sha256::digest(&bytes);
        if hex::decode(&v.sha256).ok().as_deref() != Some(&sha[..]) {
            return Err(bad(format!(
                "variant {}'s bytes do not hash to its stated SHA-256",
                v.width
            )));
        }
        payloads.push(bytes);
    }
    Ok(ResizeOutput {
        manifest,
        payloads,
        module_time,
    })
}
