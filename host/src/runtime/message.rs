//! A plugin's `retry`/`reject` message, made safe for where it goes: the
//! sender's answer body, the host log and the inbox (`last_error`).
//!
//! The message is the plugin's to choose, so it is bounded
//! ([`MAX_MESSAGE`] bytes, the cut marked) and its control characters are
//! escaped: a newline in it must not start a forged line in a text log, nor
//! an escape sequence repaint an operator's terminal.

use std::fmt::Write as _;

/// Longest message kept, in bytes, after escaping; the rest is cut.
pub const MAX_MESSAGE: usize = 1024;

/// `message` with control characters escaped (`\n`, `\r`, `\t`, else
/// `\u{..}`) and cut at [`MAX_MESSAGE`] bytes, on a character boundary,
/// with a note of how long it was.
pub(super) fn bounded(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE) + 48);
    for (at, c) in message.char_indices() {
        let before = out.len();
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Also the C1 controls, and the bidirectional overrides that
            // make text read in another order than it is written.
            c if c.is_control()
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c) =>
            {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
        if out.len() > MAX_MESSAGE {
            out.truncate(before);
            let _ = write!(
                out,
                "… [truncated at byte {at} of {} by the host]",
                message.len()
            );
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(bounded("plain text, ünïcode"), "plain text, ünïcode");
        assert_eq!(
            bounded("bad\nINFO forged line\r\t\u{1b}[2J\u{7f}\u{202e}"),
            "bad\\nINFO forged line\\r\\t\\u{1b}[2J\\u{7f}\\u{202e}"
        );
    }

    #[test]
    fn long_messages_are_cut_and_say_where() {
        let long = "é".repeat(3000); // 6000 bytes
        let cut = bounded(&long);
        assert!(cut.len() <= MAX_MESSAGE + 64, "{}", cut.len());
        assert!(
            cut.ends_with("… [truncated at byte 1024 of 6000 by the host]"),
            "{cut}"
        );
        assert!(cut.starts_with("éé"));
        let exactly = "x".repeat(MAX_MESSAGE);
        assert_eq!(bounded(&exactly), exactly, "a message at the cap is whole");
        let newlines = "\n".repeat(4 * 1024 * 1024);
        let cut = bounded(&newlines);
        assert!(!cut.contains('\n'));
        assert!(cut.len() <= MAX_MESSAGE + 64);
    }
}
