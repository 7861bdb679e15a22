// The memory cap: the module's own memory declaration gets a maximum, so a
// `memory.grow` past the cap fails inside the module exactly as it does
// under wasmtime's StoreLimits (the allocator sees the failure; reading the
// input turns it into `over_limits`, an allocation deep in a decoder aborts).

const PAGE = 65536;

function readU32(b, i) {
  let v = 0, shift = 0, byte;
  do {
    byte = b[i++];
    v += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [v, i];
}

function u32(v) {
  const out = [];
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return out;
}

/**
 * Returns a copy of the module bytes whose defined memory may grow to at most
 * `limitBytes` (rounded down to whole 64 KiB pages).
 * @param {Uint8Array} wasm
 * @param {number} limitBytes
 * @returns {Uint8Array}
 */
export function capMemory(wasm, limitBytes) {
  const capPages = Math.max(1, Math.floor(limitBytes / PAGE));
  let i = 8;
  while (i < wasm.length) {
    const id = wasm[i];
    const [size, body] = readU32(wasm, i + 1);
    if (id === 5) {
      let [count, j] = readU32(wasm, body);
      const entries = [...u32(count)];
      for (; count > 0; count--) {
        const flags = wasm[j];
        if (flags & 0x04) throw new Error('memory64 modules are not supported');
        let min, max = null;
        [min, j] = readU32(wasm, j + 1);
        if (flags & 0x01) [max, j] = readU32(wasm, j);
        const capped = Math.min(max ?? capPages, capPages);
        entries.push((flags & 0x02) | 0x01, ...u32(min), ...u32(Math.max(min, capped)));
      }
      const section = [5, ...u32(entries.length), ...entries];
      const out = new Uint8Array(i + section.length + wasm.length - (body + size));
      out.set(wasm.subarray(0, i));
      out.set(section, i);
      out.set(wasm.subarray(body + size), i + section.length);
      return out;
    }
    i = body + size;
  }
  throw new Error('the module defines no memory');
}
