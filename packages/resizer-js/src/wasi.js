// The WASI preview 1 subset resizer.wasm imports, over memory: argv, stdin
// from a byte array, stdout and stderr collected, no environment, no files
// (every path call is refused), exit by proc_exit. `runWasi` is
// self-contained (it refers to nothing outside its own body) because
// `index.js` also ships its source text into a Worker for the time cap.

/**
 * Instantiates `module` and runs `_start` once.
 * @param {WebAssembly.Module} module the (memory-capped) resizer module
 * @param {string[]} argv argv[0] included
 * @param {Uint8Array} input stdin
 * @returns {{exitCode: number|null, stdout: Uint8Array, stderr: Uint8Array, trap: string|null, memoryBytes: number}}
 */
export async function runWasi(module, argv, input) {
  const ESUCCESS = 0, EBADF = 8, ENOTCAPABLE = 76;
  const enc = new TextEncoder();
  const args = argv.map((a) => enc.encode(`${a}\0`));
  const out = [], err = [];
  let outLen = 0, errLen = 0, pos = 0;
  let memory;
  class Exit {
    constructor(code) { this.code = code; }
  }
  const view = () => new DataView(memory.buffer);
  const bytes = () => new Uint8Array(memory.buffer);
  const isStdio = (fd) => fd === 0 || fd === 1 || fd === 2;
  const wasi = {
    args_sizes_get(argcPtr, sizePtr) {
      const v = view();
      v.setUint32(argcPtr, args.length, true);
      v.setUint32(sizePtr, args.reduce((n, a) => n + a.length, 0), true);
      return ESUCCESS;
    },
    args_get(argvPtr, bufPtr) {
      const v = view(), b = bytes();
      for (const [i, a] of args.entries()) {
        v.setUint32(argvPtr + 4 * i, bufPtr, true);
        b.set(a, bufPtr);
        bufPtr += a.length;
      }
      return ESUCCESS;
    },
    environ_sizes_get(countPtr, sizePtr) {
      const v = view();
      v.setUint32(countPtr, 0, true);
      v.setUint32(sizePtr, 0, true);
      return ESUCCESS;
    },
    environ_get() { return ESUCCESS; },
    random_get(ptr, len) {
      // Seeds std's hash maps only; nothing in the output depends on it.
      for (let off = 0; off < len; off += 65536) {
        globalThis.crypto.getRandomValues(new Uint8Array(memory.buffer, ptr + off, Math.min(65536, len - off)));
      }
      return ESUCCESS;
    },
    fd_close(fd) { return isStdio(fd) ? ESUCCESS : EBADF; },
    fd_fdstat_get(fd, ptr) {
      if (!isStdio(fd)) return EBADF;
      const v = view();
      for (let i = 0; i < 24; i++) v.setUint8(ptr + i, 0);
      v.setUint8(ptr, 2); // character device
      v.setBigUint64(ptr + 8, 0xffffffffn, true);
      v.setBigUint64(ptr + 16, 0xffffffffn, true);
      return ESUCCESS;
    },
    fd_filestat_get(fd, ptr) {
      if (!isStdio(fd)) return EBADF;
      const v = view();
      for (let i = 0; i < 64; i++) v.setUint8(ptr + i, 0);
      v.setUint8(ptr + 16, 2); // character device, size 0 (a stream)
      return ESUCCESS;
    },
    fd_prestat_get() { return EBADF; }, // no preopened directories
    fd_prestat_dir_name() { return EBADF; },
    path_open() { return ENOTCAPABLE; },
    fd_read(fd, iovs, iovsLen, nreadPtr) {
      if (fd !== 0) return EBADF;
      const v = view(), b = bytes();
      let n = 0;
      for (let i = 0; i < iovsLen && pos < input.length; i++) {
        const p = v.getUint32(iovs + 8 * i, true), l = v.getUint32(iovs + 8 * i + 4, true);
        const take = Math.min(l, input.length - pos);
        b.set(input.subarray(pos, pos + take), p);
        pos += take;
        n += take;
      }
      v.setUint32(nreadPtr, n, true);
      return ESUCCESS;
    },
    fd_write(fd, iovs, iovsLen, nwrittenPtr) {
      if (fd !== 1 && fd !== 2) return EBADF;
      const v = view();
      let n = 0;
      for (let i = 0; i < iovsLen; i++) {
        const p = v.getUint32(iovs + 8 * i, true), l = v.getUint32(iovs + 8 * i + 4, true);
        if (l === 0) continue;
        const chunk = new Uint8Array(memory.buffer.slice(p, p + l));
        if (fd === 1) { out.push(chunk); outLen += l; } else { err.push(chunk); errLen += l; }
        n += l;
      }
      v.setUint32(nwrittenPtr, n, true);
      return ESUCCESS;
    },
    proc_exit(code) { throw new Exit(code); },
    sched_yield() { return ESUCCESS; },
  };
  const concat = (chunks, len) => {
    const all = new Uint8Array(len);
    let o = 0;
    for (const c of chunks) { all.set(c, o); o += c.length; }
    return all;
  };
  let exitCode = 0, trap = null;
  try {
    const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: wasi });
    memory = instance.exports.memory;
    instance.exports._start();
  } catch (e) {
    if (e instanceof Exit) exitCode = e.code;
    else if (e instanceof WebAssembly.RuntimeError || e instanceof RangeError) { exitCode = null; trap = String(e.message || e); }
    else throw e;
  }
  return { exitCode, stdout: concat(out, outLen), stderr: concat(err, errLen), trap, memoryBytes: memory ? memory.buffer.byteLength : 0 };
}
