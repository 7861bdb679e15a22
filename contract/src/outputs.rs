//! Which formats the resizer writes at which width: the deployment's choice,
//! spelt the same way in the Lambda's `PIXPORT_VARIANT_FORMATS`, the
//! resizer's `--formats` and anything the edge reads back.
//!
//! Text syntax: a comma list of rules, each a format with an optional
//! `:N` that limits it to target widths <= N, e.g. `auto,webp,avif:640`.
//! `auto` is JPEG, or PNG when the source has real transparency.
//!
//! Modern formats are made ahead of time rather than on request, so every
//! format in the set costs encode time on every upload; the width cap lets a
//! slow encoder (AVIF) run only where it is cheap.

use std::fmt;
use std::str::FromStr;

use crate::format::OutputFormat;

/// Widest target width a rule may name (the resizer's own `--widths` cap).
pub const MAX_RULE_WIDTH: u32 = 16384;

/// What a rule asks for: a fixed format, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormatChoice {
    /// JPEG, or PNG when the source has real transparency.
    Auto,
    Fixed(OutputFormat),
}

impl FormatChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            FormatChoice::Auto => "auto",
            FormatChoice::Fixed(f) => f.as_str(),
        }
    }

    /// The format this choice writes for a source with or without real
    /// transparency.
    pub fn resolve(self, transparent: bool) -> OutputFormat {
        match self {
            FormatChoice::Auto if transparent => OutputFormat::Png,
            FormatChoice::Auto => OutputFormat::Jpeg,
            FormatChoice::Fixed(f) => f,
        }
    }
}

impl FromStr for FormatChoice {
    type Err = OutputSetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        match name.as_str() {
            "auto" => Ok(FormatChoice::Auto),
            // `jpg` as the extension spells it; written back as `jpeg`.
            "jpg" => Ok(FormatChoice::Fixed(OutputFormat::Jpeg)),
            _ => OutputFormat::ALL
                .into_iter()
                .find(|f| f.as_str() == name)
                .map(FormatChoice::Fixed)
                .ok_or(OutputSetError::UnknownFormat(s.trim().to_owned())),
        }
    }
}

impl fmt::Display for FormatChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of an [`OutputSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutputRule {
    pub format: FormatChoice,
    /// Only for target widths <= this; `None` = every width.
    pub max_width: Option<u32>,
}

impl OutputRule {
    pub fn applies_to(&self, width: u32) -> bool {
        self.max_width.is_none_or(|max| width <= max)
    }
}

impl fmt::Display for OutputRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.max_width {
            Some(n) => write!(f, "{}:{n}", self.format),
            None => write!(f, "{}", self.format),
        }
    }
}

/// Why a format set was refused. The message names the offending rule, so
/// a typo in a deployment's environment fails its start with a clear line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSetError {
    Empty,
    UnknownFormat(String),
    BadWidth(String),
    Duplicate(String),
    /// Every rule has a width cap, so wider targets would get no variant.
    NoUncappedRule,
}

impl fmt::Display for OutputSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputSetError::Empty => f.write_str("the format set is empty"),
            OutputSetError::UnknownFormat(s) => write!(
                f,
                "unknown format {s:?} (expected auto, jpeg, png, webp or avif)"
            ),
            OutputSetError::BadWidth(s) => {
                write!(f, "width cap {s:?} is not a number in 1..={MAX_RULE_WIDTH}")
            }
            OutputSetError::Duplicate(s) => write!(f, "format {s:?} is listed twice"),
            OutputSetError::NoUncappedRule => {
                f.write_str("at least one format needs no width cap, so every width gets a variant")
            }
        }
    }
}

impl std::error::Error for OutputSetError {}

/// The formats a deployment makes, in the order the manifest lists them at
/// each width.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OutputSet(Vec<OutputRule>);

impl OutputSet {
    /// What a deployment makes unless it says otherwise; the measurements
    /// behind it are in docs/resizer.md ("Modern formats").
    pub const DEFAULT_SPEC: &'static str = "auto,webp,avif:640";

    /// A set of one format at every width (the resizer's old `--format X`).
    pub fn single(format: FormatChoice) -> Self {
        OutputSet(vec![OutputRule {
            format,
            max_width: None,
        }])
    }

    pub fn rules(&self) -> &[OutputRule] {
        &self.0
    }

    /// The formats to write at `width`, in rule order, each once (`auto`
    /// and `jpeg` in one set give one JPEG).
    pub fn formats_at(&self, width: u32, transparent: bool) -> Vec<OutputFormat> {
        let mut out = Vec::with_capacity(self.0.len());
        for rule in self.0.iter().filter(|r| r.applies_to(width)) {
            let f = rule.format.resolve(transparent);
            if !out.contains(&f) {
                out.push(f);
            }
        }
        out
    }

    /// Whether any rule can write `format` (at some width, for some source).
    pub fn may_contain(&self, format: OutputFormat) -> bool {
        self.0
            .iter()
            .any(|r| r.format.resolve(false) == format || r.format.resolve(true) == format)
    }
}

impl Default for OutputSet {
    fn default() -> Self {
        match Self::DEFAULT_SPEC.parse() {
            Ok(set) => set,
            // Unreachable: a unit test parses DEFAULT_SPEC.
            Err(_) => OutputSet::single(FormatChoice::Auto),
        }
    }
}

impl FromStr for OutputSet {
    type Err = OutputSetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Err(OutputSetError::Empty);
        }
        let mut rules: Vec<OutputRule> = Vec::new();
        for part in s.split(',') {
            let (name, cap) = match part.split_once(':') {
                Some((n, c)) => (n, Some(c)),
                None => (part, None),
            };
            let format: FormatChoice = name.parse()?;
            let max_width = match cap {
                None => None,
                Some(c) => Some(
                    c.trim()
                        .parse::<u32>()
                        .ok()
                        .filter(|n| (1..=MAX_RULE_WIDTH).contains(n))
                        .ok_or_else(|| OutputSetError::BadWidth(c.trim().to_owned()))?,
                ),
            };
            if rules.iter().any(|r| r.format == format) {
                return Err(OutputSetError::Duplicate(format.to_string()));
            }
            rules.push(OutputRule { format, max_width });
        }
        if rules.iter().all(|r| r.max_width.is_some()) {
            return Err(OutputSetError::NoUncappedRule);
        }
        Ok(OutputSet(rules))
    }
}

impl fmt::Display for OutputSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{rule}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OutputFormat::*;

    #[test]
    fn default_parses_and_round_trips() {
        let set = OutputSet::default();
        assert_eq!(set.to_string(), OutputSet::DEFAULT_SPEC);
        assert_eq!(set.formats_at(320, false)[0], Jpeg);
    }

    #[test]
    fn round_trip() {
        for spec in ["auto", "jpeg", "auto,webp,avif:640", "png:320,webp", "avif"] {
            let set: OutputSet = spec.parse().unwrap();
            assert_eq!(set.to_string(), spec);
            assert_eq!(set.to_string().parse::<OutputSet>().unwrap(), set);
        }
        // Normalised: case, spaces, `jpg`.
        let set: OutputSet = " AUTO , WebP:1920 ,jpg".parse().unwrap();
        assert_eq!(set.to_string(), "auto,webp:1920,jpeg");
    }

    #[test]
    fn formats_per_width() {
        let set: OutputSet = "auto,webp,avif:640".parse().unwrap();
        assert_eq!(set.formats_at(1920, false), vec![Jpeg, Webp]);
        assert_eq!(set.formats_at(641, false), vec![Jpeg, Webp]);
        assert_eq!(set.formats_at(640, false), vec![Jpeg, Webp, Avif]);
        assert_eq!(set.formats_at(320, true), vec![Png, Webp, Avif]);
        // `auto` and `jpeg` give one JPEG.
        let set: OutputSet = "auto,jpeg".parse().unwrap();
        assert_eq!(set.formats_at(320, false), vec![Jpeg]);
        assert_eq!(set.formats_at(320, true), vec![Png, Jpeg]);
        assert!(set.may_contain(Png) && !set.may_contain(Webp));
    }

    #[test]
    fn errors_are_clear() {
        let cases: [(&str, OutputSetError); 9] = [
            ("", OutputSetError::Empty),
            ("  ", OutputSetError::Empty),
            ("tiff", OutputSetError::UnknownFormat("tiff".into())),
            ("auto,", OutputSetError::UnknownFormat("".into())),
            ("auto,avif:0", OutputSetError::BadWidth("0".into())),
            ("auto,avif:x", OutputSetError::BadWidth("x".into())),
            ("auto,avif:99999", OutputSetError::BadWidth("99999".into())),
            (
                "webp,auto,webp:640",
                OutputSetError::Duplicate("webp".into()),
            ),
            ("avif:640,webp:1920", OutputSetError::NoUncappedRule),
        ];
        for (spec, want) in cases {
            assert_eq!(spec.parse::<OutputSet>().unwrap_err(), want, "{spec:?}");
            assert!(!want.to_string().is_empty());
        }
        assert!(
            "tiff"
                .parse::<OutputSet>()
                .unwrap_err()
                .to_string()
                .contains("\"tiff\"")
        );
    }

    #[test]
    fn single_is_the_old_format_flag() {
        let set = OutputSet::single(FormatChoice::Fixed(Webp));
        assert_eq!(set.to_string(), "webp");
        assert_eq!(set.formats_at(1920, true), vec![Webp]);
    }
}
