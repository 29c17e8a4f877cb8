//! SQLite's anonymous placeholders for the store's numbered ones: the store
//! writes `$n` for both backends, and on SQLite each statement is sent with
//! `?` in their place (`db::Sent` says why).

/// `sql` with each `$n` outside quotes and comments replaced by `?`, and the
/// argument index each takes; `None` when there is nothing to rewrite or a
/// `$n` names an argument that is not there (left to SQLite, which binds
/// NULL, as before).
pub(crate) fn positional(sql: &str, n_args: usize) -> Option<(String, Vec<usize>)> {
    if !sql.contains('$') {
        return None;
    }
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut order = Vec::new();
    // Start of the text not yet copied to `out`.
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            // A string literal or quoted identifier: up to its closing quote
            // (a doubled quote inside is an escaped one and reopens it).
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let start = i;
                i += 1;
                let mut n = 0usize;
                while i < b.len() && b[i].is_ascii_digit() {
                    n = n
                        .saturating_mul(10)
                        .saturating_add(usize::from(b[i] - b'0'));
                    i += 1;
                }
                if n == 0 || n > n_args {
                    return None;
                }
                out.push_str(&sql[copied..start]);
                out.push('?');
                order.push(n - 1);
                copied = i;
            }
            _ => i += 1,
        }
    }
    if order.is_empty() {
        return None;
    }
    out.push_str(&sql[copied.min(sql.len())..]);
    Some((out, order))
}

#[cfg(test)]
mod tests {
    use super::positional;

    #[test]
    fn placeholders_become_positional_in_order() {
        let (sql, order) =
            positional("INSERT INTO t VALUES ($2, $1, $2), ($3, $1, $2)", 3).expect("rewritten");
        assert_eq!(sql, "INSERT INTO t VALUES (?, ?, ?), (?, ?, ?)");
        assert_eq!(order, [1, 0, 1, 2, 0, 1]);
    }

    #[test]
    fn quotes_and_comments_are_left_alone() {
        let (sql, order) = positional(
            "SELECT json_extract(f, '$.' || $1), 'it''s $2' AS \"$3\" -- $4\n/* $5 */ FROM t WHERE a = $10",
            10,
        )
        .expect("rewritten");
        assert_eq!(
            sql,
            "SELECT json_extract(f, '$.' || ?), 'it''s $2' AS \"$3\" -- $4\n/* $5 */ FROM t WHERE a = ?"
        );
        assert_eq!(order, [0, 9]);
    }

    #[test]
    fn nothing_to_rewrite_or_a_missing_argument_leaves_the_statement() {
        assert!(positional("SELECT 1", 0).is_none());
        assert!(positional("SELECT '$1'", 1).is_none());
        assert!(positional("SELECT $1, $2", 1).is_none());
        assert!(positional("SELECT $0", 1).is_none());
    }
}
