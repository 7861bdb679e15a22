/** Error classes: the module's own (resizer-wasi/README.md, "Exit codes and errors") and `timeout` (the host's time cap). */
export type ResizerErrorCode =
  | 'usage'
  | 'unsupported_format'
  | 'corrupt'
  | 'over_limits'
  | 'io'
  | 'internal'
  | 'timeout';

/** Options: the command line's flags (resizer-wasi/README.md) plus the host's caps. */
export interface ResizeOptions {
  /** Target widths (1..=16384); default [1920, 640, 320]. */
  widths?: number[];
  /** Output set, e.g. ['auto', 'webp', 'avif:640'] or 'auto,webp'; default 'auto'. */
  formats?: string[] | string;
  /** JPEG quality 1..=100 (WebP +8, AVIF -12); default 82. */
  quality?: number;
  /** Largest input accepted, bytes; default 100,000,000. */
  maxBytes?: number;
  /** Largest width x height accepted; default 100,000,000. */
  maxPixels?: number;
  /** Largest width or height accepted; default 20,000. */
  maxDimension?: number;
  /** ThumbHash, BlurHash and dominant colour in the manifest; default true. */
  placeholders?: boolean;
  /** 'srgb' (convert embedded profiles) or 'keep'; default 'srgb'. */
  icc?: 'srgb' | 'keep';
  /** Linear memory cap in bytes (whole 64 KiB pages); default 1 GiB. Hitting it is `over_limits`. */
  memoryLimit?: number;
  /** Time cap in ms: the module then runs in a Worker that is terminated at the deadline (`timeout`). Default: none, in the calling thread. */
  timeoutMs?: number;
  /** The module's bytes, to use instead of the bundled resizer.wasm. */
  wasm?: Uint8Array | ArrayBuffer;
}

export interface Variant {
  width: number;
  height: number;
  format: 'jpeg' | 'png' | 'webp' | 'avif';
  content_type: string;
  bytes: number;
  offset: number;
  sha256: string;
}

export interface Manifest {
  version: number;
  source: {
    format: 'jpeg' | 'png' | 'webp' | 'gif';
    width: number;
    height: number;
    orientation: number;
    bytes: number;
    icc: boolean;
    icc_to_srgb: boolean;
    decoded_width: number;
    decoded_height: number;
  };
  variants: Variant[];
  skipped: { width: number; reason: string }[];
  payload_bytes: number;
  placeholder?: { thumbhash: string; blurhash: string; dominant_color: string };
}

export interface ResizeResult {
  manifest: Manifest;
  /** `variants[i]` is the encoded file of `manifest.variants[i]` (views of one buffer). */
  variants: Uint8Array[];
}

export declare class ResizerError extends Error {
  readonly name: 'ResizerError';
  /** Stable class of the failure. */
  readonly code: ResizerErrorCode;
  /** The module's exit code (2..7), or null for a host cap (memory trap, timeout). */
  readonly exitCode: number | null;
  /** The module's stderr, for logs. */
  readonly stderr: string;
}

/** The module's exit code per error class. */
export declare const EXIT_CODES: Readonly<Record<Exclude<ResizerErrorCode, 'timeout'>, number>>;

/** 1 GiB: the memory cap when `memoryLimit` is not given. */
export declare const DEFAULT_MEMORY_LIMIT: number;

/** Resizes one image (JPEG, PNG, WebP or GIF, sniffed from the bytes). Rejects with `ResizerError`. */
export declare function resize(
  data: Uint8Array | ArrayBuffer | ArrayBufferView | Blob,
  options?: ResizeOptions,
): Promise<ResizeResult>;
