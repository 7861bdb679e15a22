//! Command-line options.
//!
//! Hand-rolled instead of clap: the module stays small, starts fast and its
//! whole argument grammar is visible here (and in README.md).

use pixport_contract::{FormatChoice, ImageLimits, OutputSet};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Target widths, deduplicated and sorted largest first (the cascade order).
    pub widths: Vec<u32>,
    pub quality: u8,
    /// Which formats at which width (`--formats auto,webp,avif:640`; the
    /// old `--format X` is the one-entry set). The CLI's default stays
    /// `auto`, one file per width; a deployment chooses its set (the
    /// Lambda's `PIXPORT_VARIANT_FORMATS`).
    pub formats: OutputSet,
    /// `--max-bytes`, `--max-pixels`, `--max-dimension`; by default the
    /// contract's, as the edge and the Lambda hold them.
    pub limits: ImageLimits,
    /// `None` = stdin.
    pub input: Option<String>,
    /// `None` = framed result on stdout.
    pub out_dir: Option<String>,
    /// Compute ThumbHash, BlurHash and the dominant colour (`--placeholders`).
    pub placeholders: bool,
    /// Convert an embedded RGB profile to sRGB (`--icc srgb`, the default)
    /// or keep it on the outputs unconverted (`--icc keep`, the old way).
    pub icc_to_srgb: bool,
}

pub const DEFAULT_WIDTHS: [u32; 3] = [1920, 640, 320];
pub const MAX_WIDTH: u32 = 16384;

impl Default for Options {
    fn default() -> Self {
        Options {
            widths: DEFAULT_WIDTHS.to_vec(),
            quality: 82,
            formats: OutputSet::single(FormatChoice::Auto),
            limits: ImageLimits::DEFAULT,
            input: None,
            out_dir: None,
            placeholders: true,
            icc_to_srgb: true,
        }
    }
}

/// What the command line asked for: a run, or help/version text.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Run(Options),
    Help,
    Version,
}

pub const USAGE: &str = "usage: resizer [--widths 1920,640,320] [--quality 82] \
[--formats auto,webp,avif:640 | --format auto|jpeg|png|webp|avif] [--max-bytes N] [--max-pixels N] [--max-dimension N] \
[--placeholders on|off] [--icc srgb|keep] [--input PATH|-] [--out-dir DIR]";

fn usage(msg: impl Into<String>) -> Error {
    Error::Usage(format!("{}; {USAGE}", msg.into()))
}

fn parse_num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T> {
    v.trim()
        .parse::<T>()
        .map_err(|_| usage(format!("{flag}: not a valid number: {v:?}")))
}

fn parse_widths(v: &str) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for part in v.split(',') {
        let w: u32 = parse_num("--widths", part)?;
        if w == 0 || w > MAX_WIDTH {
            return Err(usage(format!("--widths: {w} out of range 1..={MAX_WIDTH}")));
        }
        out.push(w);
    }
    out.sort_unstable_by(|a, b| b.cmp(a));
    out.dedup();
    Ok(out)
}

/// Parses `args` (without the program name). Accepts `--flag value` and `--flag=value`.
pub fn parse<I, S>(args: I) -> Result<Command>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut o = Options::default();
    let mut it = args.into_iter().map(Into::into);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            _ => {}
        }
        let mut value = || -> Result<String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .ok_or_else(|| usage(format!("{flag} needs a value"))),
            }
        };
        match flag.as_str() {
            "--widths" => o.widths = parse_widths(&value()?)?,
            "--quality" => {
                let q: u8 = parse_num("--quality", &value()?)?;
                if !(1..=100).contains(&q) {
                    return Err(usage("--quality must be 1..=100"));
                }
                o.quality = q;
            }
            "--format" => {
                let v = value()?;
                let choice: FormatChoice =
                    v.parse().map_err(|e| usage(format!("--format: {e}")))?;
                o.formats = OutputSet::single(choice);
            }
            "--formats" => {
                o.formats = value()?
                    .parse()
                    .map_err(|e| usage(format!("--formats: {e}")))?;
            }
            "--max-bytes" => o.limits.max_bytes = parse_num("--max-bytes", &value()?)?,
            "--max-pixels" => o.limits.max_pixels = parse_num("--max-pixels", &value()?)?,
            "--max-dimension" => o.limits.max_dimension = parse_num("--max-dimension", &value()?)?,
            "--input" => {
                let v = value()?;
                o.input = if v == "-" { None } else { Some(v) };
            }
            "--out-dir" => o.out_dir = Some(value()?),
            "--placeholders" => {
                o.placeholders = match value()?.as_str() {
                    "on" => true,
                    "off" => false,
                    other => return Err(usage(format!("--placeholders: {other:?} is not on|off"))),
                }
            }
            "--icc" => {
                o.icc_to_srgb = match value()?.as_str() {
                    "srgb" => true,
                    "keep" => false,
                    other => return Err(usage(format!("--icc: {other:?} is not srgb|keep"))),
                }
            }
            _ => return Err(usage(format!("unknown argument {arg:?}"))),
        }
    }
    Ok(Command::Run(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Options {
        match parse(args.iter().copied()).unwrap() {
            Command::Run(o) => o,
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn defaults() {
        let o = run(&[]);
        assert_eq!(o.widths, vec![1920, 640, 320]);
        assert_eq!(o.quality, 82);
        assert_eq!(o.formats.to_string(), "auto");
        assert_eq!(o.input, None);
        // The edge's and the Lambda's limits, so a bare CLI run refuses
        // what production refuses.
        assert_eq!(o.limits, ImageLimits::DEFAULT);
    }

    #[test]
    fn widths_sorted_and_deduplicated() {
        assert_eq!(
            run(&["--widths", "320,1920,640,320"]).widths,
            vec![1920, 640, 320]
        );
        assert_eq!(run(&["--widths=100"]).widths, vec![100]);
    }

    #[test]
    fn all_flags() {
        let o = run(&[
            "--quality",
            "90",
            "--format",
            "webp",
            "--max-bytes",
            "10",
            "--max-pixels=20",
            "--max-dimension",
            "30",
            "--input",
            "/in/a.jpg",
            "--out-dir",
            "/out",
            "--placeholders",
            "off",
            "--icc=keep",
        ]);
        assert!(!o.placeholders && !o.icc_to_srgb);
        assert_eq!(o.quality, 90);
        assert_eq!(o.formats.to_string(), "webp");
        assert_eq!(
            o.limits,
            ImageLimits {
                max_bytes: 10,
                max_pixels: 20,
                max_dimension: 30
            }
        );
        assert_eq!(o.input.as_deref(), Some("/in/a.jpg"));
        assert_eq!(o.out_dir.as_deref(), Some("/out"));
        assert_eq!(run(&["--input", "-"]).input, None);
    }

    #[test]
    fn format_sets() {
        let o = run(&["--formats", "auto,webp,avif:640"]);
        assert_eq!(o.formats, OutputSet::default());
        assert_eq!(
            run(&["--formats=png:320,jpeg"]).formats.to_string(),
            "png:320,jpeg"
        );
        assert_eq!(run(&["--format", "AVIF"]).formats.to_string(), "avif");
        // The last of the two flags wins, as for every other flag.
        assert_eq!(
            run(&["--formats", "auto,webp", "--format", "jpg"])
                .formats
                .to_string(),
            "jpeg"
        );
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &["--widths", "0"][..],
            &["--widths", "abc"],
            &["--quality", "0"],
            &["--quality", "101"],
            &["--format", "tiff"],
            &["--format", "auto,webp"],
            &["--formats", "avif:640"],
            &["--formats", "webp,webp"],
            &["--formats", ""],
            &["--placeholders", "yes"],
            &["--icc", "p3"],
            &["--bogus"],
            &["--quality"],
        ] {
            let e = parse(bad.iter().copied()).unwrap_err();
            assert_eq!(e.class(), "usage", "{bad:?}");
        }
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse(["--help"]).unwrap(), Command::Help);
        assert_eq!(parse(["-V"]).unwrap(), Command::Version);
    }
}
