//! Form fields and their rules: what a client may attach to an image.
//!
//! Values are stored as given (trimmed) and only ever reach SQL as bound
//! parameters, so "SQL-looking" text is just text. The limits keep rows well
//! under the Data API's 64 KB row limit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::error::{Error, Result};

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 4000;
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_CHARS: usize = 64;
pub const MAX_EXTRA_NAME_CHARS: usize = 64;
pub const MAX_FILE_NAME_BYTES: usize = 255;
/// The `extra` map as stored (JSON in a TEXT column, 64 KiB): bounded as a
/// whole, since many small fields add up past any per-field limit.
pub const MAX_EXTRA_JSON_BYTES: usize = 32 * 1024;

/// Who may see an image's variants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone who has the image's id; caches may keep the variants.
    #[default]
    Public,
    /// The owner, and whoever holds a signed, expiring delivery URL
    /// (`domain::delivery`); never kept by a shared cache.
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Result<Visibility> {
        match s.trim() {
            "public" => Ok(Visibility::Public),
            "private" => Ok(Visibility::Private),
            _ => Err(Error::invalid_field("visibility", "public or private")),
        }
    }
}

/// The metadata of one image, as clients send and read it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub title: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub extra: BTreeMap<String, String>,
    #[serde(default)]
    pub visibility: Visibility,
}

impl Metadata {
    /// Adds one text part of an upload form.
    pub fn add_form_field(&mut self, name: &str, value: &str, max_bytes: usize) -> Result<()> {
        if value.len() > max_bytes {
            return Err(Error::PayloadTooLarge(format!(
                "field `{name}` is over {max_bytes} bytes"
            )));
        }
        match name {
            "title" => self.title = Some(text("title", value, MAX_TITLE_CHARS)?),
            "description" => {
                self.description = Some(text("description", value, MAX_DESCRIPTION_CHARS)?)
            }
            "visibility" => self.visibility = Visibility::parse(value)?,
            "tags" | "tags[]" | "tag" => {
                for t in value.split(',') {
                    if !t.trim().is_empty() {
                        push_tag(&mut self.tags, t)?;
                    }
                }
            }
            _ => {
                check_extra_name(name)?;
                self.extra
                    .insert(name.to_string(), text(name, value, max_bytes)?);
                check_extra_size(&self.extra)?;
            }
        }
        Ok(())
    }
}

/// A `PATCH` body: absent members stay as they are, `null` clears.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patch {
    #[serde(default, deserialize_with = "double_option")]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    pub description: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub extra: Option<BTreeMap<String, String>>,
    pub visibility: Option<Visibility>,
}

fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl Patch {
    /// Applies the patch to `m` under the same rules as an upload.
    pub fn apply(self, m: &mut Metadata, max_field_bytes: usize) -> Result<()> {
        if let Some(t) = self.title {
            m.title = t.map(|t| text("title", &t, MAX_TITLE_CHARS)).transpose()?;
        }
        if let Some(d) = self.description {
            m.description = d
                .map(|d| text("description", &d, MAX_DESCRIPTION_CHARS))
                .transpose()?;
        }
        if let Some(v) = self.visibility {
            m.visibility = v;
        }
        if let Some(tags) = self.tags {
            m.tags.clear();
            for t in tags {
                push_tag(&mut m.tags, &t)?;
            }
        }
        if let Some(extra) = self.extra {
            m.extra.clear();
            for (k, v) in extra {
                check_extra_name(&k)?;
                if v.len() > max_field_bytes {
                    return Err(Error::PayloadTooLarge(format!(
                        "field `{k}` is over {max_field_bytes} bytes"
                    )));
                }
                let v = text(&k, &v, max_field_bytes)?;
                m.extra.insert(k, v);
            }
            check_extra_size(&m.extra)?;
        }
        Ok(())
    }
}

fn check_extra_size(extra: &BTreeMap<String, String>) -> Result<()> {
    let len = serde_json::to_vec(extra).map_or(usize::MAX, |v| v.len());
    if len > MAX_EXTRA_JSON_BYTES {
        return Err(Error::PayloadTooLarge(format!(
            "extra fields are {len} bytes together, over {MAX_EXTRA_JSON_BYTES}"
        )));
    }
    Ok(())
}

fn text(field: &str, value: &str, max_chars: usize) -> Result<String> {
    let v = value.trim();
    if v.chars().count() > max_chars {
        return Err(Error::invalid_field(
            field,
            format!("longer than {max_chars} characters"),
        ));
    }
    if v.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(Error::invalid_field(field, "contains control characters"));
    }
    Ok(v.to_string())
}

fn push_tag(tags: &mut Vec<String>, raw: &str) -> Result<()> {
    let t = raw.trim();
    if t.is_empty() || t.chars().count() > MAX_TAG_CHARS {
        return Err(Error::invalid_field(
            "tags",
            format!("each tag needs 1 to {MAX_TAG_CHARS} characters"),
        ));
    }
    if t.chars().any(|c| c.is_control() || c == ',') {
        return Err(Error::invalid_field(
            "tags",
            "tags cannot hold commas or control characters",
        ));
    }
    if !tags.iter().any(|x| x == t) {
        if tags.len() == MAX_TAGS {
            return Err(Error::invalid_field(
                "tags",
                format!("at most {MAX_TAGS} tags"),
            ));
        }
        tags.push(t.to_string());
    }
    Ok(())
}

fn check_extra_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_EXTRA_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_field(
            name,
            "field names use A-Z, a-z, 0-9, `_`, `-` and `.`, up to 64",
        ))
    }
}

/// The file name to show back to the client: the last path component, without
/// control characters, at most 255 bytes. Storage keys never use it.
pub fn clean_file_name(raw: &str) -> Option<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut out = String::new();
    for c in last.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > MAX_FILE_NAME_BYTES {
            break;
        }
        out.push(c);
    }
    let out = out.trim().to_string();
    (!out.is_empty() && out != "." && out != "..").then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_fields_tags_and_extra() {
        let mut m = Metadata::default();
        m.add_form_field("title", "  Sunset  ", 100).unwrap();
        m.add_form_field("tags", "sea, sky,,sea", 100).unwrap();
        m.add_form_field("tags", "夕焼け", 100).unwrap();
        m.add_form_field("camera", "X100V", 100).unwrap();
        assert_eq!(m.title.as_deref(), Some("Sunset"));
        assert_eq!(m.tags, ["sea", "sky", "夕焼け"]);
        assert_eq!(m.extra["camera"], "X100V");
    }

    #[test]
    fn extra_is_bounded_as_a_whole() {
        // Each field within its own limit, together past the column's size.
        let mut m = Metadata::default();
        let mut refused = None;
        for i in 0..40 {
            if let Err(e) = m.add_form_field(&format!("f{i}"), &"v".repeat(1000), 16 * 1024) {
                refused = Some((i, e));
                break;
            }
        }
        let (i, e) = refused.expect("never refused");
        assert!(i > 20 && i < 40, "refused at {i}");
        assert!(matches!(e, Error::PayloadTooLarge(_)), "{e}");
        let patch: Patch = serde_json::from_value(serde_json::json!({
            "extra": (0..5000).map(|i| (format!("k{i}"), "v")).collect::<BTreeMap<_, _>>()
        }))
        .unwrap();
        let e = patch
            .apply(&mut Metadata::default(), 16 * 1024)
            .unwrap_err();
        assert!(matches!(e, Error::PayloadTooLarge(_)), "{e}");
    }

    #[test]
    fn sql_looking_values_are_kept_verbatim() {
        let mut m = Metadata::default();
        m.add_form_field("title", "'; DROP TABLE images; --", 100)
            .unwrap();
        assert_eq!(m.title.as_deref(), Some("'; DROP TABLE images; --"));
    }

    #[test]
    fn limits() {
        let mut m = Metadata::default();
        assert!(matches!(
            m.add_form_field("title", &"x".repeat(201), 1000),
            Err(Error::InvalidField { .. })
        ));
        assert!(matches!(
            m.add_form_field("notes", &"x".repeat(101), 100),
            Err(Error::PayloadTooLarge(_))
        ));
        assert!(matches!(
            m.add_form_field("bad name", "v", 100),
            Err(Error::InvalidField { .. })
        ));
        assert!(matches!(
            m.add_form_field("title", "a\u{0}b", 100),
            Err(Error::InvalidField { .. })
        ));
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(m.add_form_field("tags", &many.join(","), 1000).is_err());
    }

    #[test]
    fn patch_sets_clears_and_keeps() {
        let mut m = Metadata {
            title: Some("a".into()),
            description: Some("d".into()),
            ..Default::default()
        };
        let p: Patch = serde_json::from_str(r#"{"title": null, "tags": ["x", "y"]}"#).unwrap();
        p.apply(&mut m, 100).unwrap();
        assert_eq!(m.title, None);
        assert_eq!(m.description.as_deref(), Some("d"));
        assert_eq!(m.tags, ["x", "y"]);
        assert!(serde_json::from_str::<Patch>(r#"{"owner": "me"}"#).is_err());
    }

    #[test]
    fn file_names_lose_paths_and_controls() {
        assert_eq!(
            clean_file_name("../../etc/passwd").as_deref(),
            Some("passwd")
        );
        assert_eq!(
            clean_file_name("C:\\Users\\me\\ünï cødé.jpg").as_deref(),
            Some("ünï cødé.jpg")
        );
        assert_eq!(
            clean_file_name("a\u{0}b\nc.jpg").as_deref(),
            Some("abc.jpg")
        );
        assert_eq!(clean_file_name(".."), None);
        assert_eq!(clean_file_name(""), None);
        let long = "é".repeat(300);
        assert!(clean_file_name(&long).is_some_and(|n| n.len() <= 255));
    }
}
