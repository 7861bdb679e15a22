//! Named `:param` placeholders to MySQL's positional `?`.
//!
//! The Data API accepts `:name` placeholders; MySQL's protocol only knows
//! `?`. Placeholders inside quotes, backticks and comments are text, `::` is
//! not a placeholder, and a name may appear more than once.

/// `sql` with each placeholder replaced by `?`, and the names in order.
pub fn to_positional(sql: &str) -> (String, Vec<String>) {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut names = Vec::new();
    let mut i = 0;
    // Start of the not-yet-copied run; copying whole runs keeps UTF-8 intact.
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => i = skip_quoted(b, i, q),
            b'#' => i = skip_line(b, i),
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace()) =>
            {
                i = skip_line(b, i)
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = match sql[i + 2..].find("*/") {
                    Some(p) => i + 2 + p + 2,
                    None => b.len(),
                }
            }
            b':' if b.get(i + 1) == Some(&b':') => i += 2,
            b':' if b.get(i + 1).is_some_and(|c| is_name_start(*c)) => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && is_name_char(b[end]) {
                    end += 1;
                }
                out.push_str(&sql[copied..i]);
                out.push('?');
                names.push(sql[start..end].to_owned());
                i = end;
                copied = end;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    (out, names)
}

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Index just past the closing quote; MySQL allows both `\'` and `''`.
fn skip_quoted(b: &[u8], open: usize, q: u8) -> usize {
    let mut i = open + 1;
    while i < b.len() {
        if b[i] == b'\\' && q != b'`' {
            i += 2;
            continue;
        }
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

fn skip_line(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| i + p + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(s: &str) -> (String, Vec<String>) {
        to_positional(s)
    }

    #[test]
    fn replaces_names_in_order_with_repeats() {
        let (sql, names) = conv("SELECT * FROM t WHERE a = :a AND b = :b_2 OR a = :a");
        assert_eq!(sql, "SELECT * FROM t WHERE a = ? AND b = ? OR a = ?");
        assert_eq!(names, ["a", "b_2", "a"]);
    }

    #[test]
    fn ignores_quotes_identifiers_and_comments() {
        let (sql, names) = conv(
            "SELECT ':x', \":y\", `:z`, 'it''s :q', 'a\\':w' -- :c\n, :real # :h\n/* :b */ FROM t",
        );
        assert_eq!(names, ["real"]);
        assert!(sql.contains("':x'") && sql.contains("/* :b */") && sql.contains(", ? #"));
    }

    #[test]
    fn double_colon_and_assignment_are_not_params() {
        let (sql, names) = conv("SELECT a::int, @v := 1, x:1");
        assert_eq!(sql, "SELECT a::int, @v := 1, x:1");
        assert!(names.is_empty());
    }

    #[test]
    fn keeps_multibyte_text_and_double_dash_needs_space() {
        let (sql, names) = conv("SELECT 'é', 5--:n\n, ñ = :ñok");
        // `5--:n` is arithmetic in MySQL, not a comment.
        assert_eq!(names, ["n"]);
        assert!(sql.starts_with("SELECT 'é', 5--?\n, ñ = :ñok"));
    }

    #[test]
    fn unterminated_constructs_do_not_panic() {
        assert_eq!(conv("SELECT 'abc :x").1.len(), 0);
        assert_eq!(conv("SELECT /* :x").1.len(), 0);
        assert_eq!(conv("SELECT :").0, "SELECT :");
    }
}
