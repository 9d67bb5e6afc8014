//! Positions between the protocol and strata.
//!
//! The protocol counts lines from 0 and characters in UTF-16 code units;
//! strata counts both from 1, columns in Unicode characters, and edits in
//! byte offsets. Every conversion goes through byte offsets of the text the
//! position refers to, and clamps: a position past the end of a line is its
//! end, a line past the end of the text is the end of the text, and a
//! position inside a surrogate pair falls back to the start of that
//! character. Lines end at `\n` (a `\r` before it belongs to the line
//! ending), as in [`SourceFile`].

use ls_types::{Position, Range, TextDocumentContentChangeEvent};

use crate::diag::{Pos, Region, SourceFile};

/// The byte offset of the start of each line of `text`.
fn line_start(text: &str, line: u32) -> Option<usize> {
    if line == 0 {
        return Some(0);
    }
    text.match_indices('\n').nth(line as usize - 1).map(|(i, _)| i + 1)
}

/// The line starting at `start`, without its line ending.
fn line_at(text: &str, start: usize) -> &str {
    let rest = &text[start..];
    let end = rest.find('\n').unwrap_or(rest.len());
    rest[..end].strip_suffix('\r').unwrap_or(&rest[..end])
}

/// The byte offset of a protocol position in `text`.
pub fn offset(text: &str, pos: Position) -> usize {
    let Some(start) = line_start(text, pos.line) else {
        return text.len();
    };
    let line = line_at(text, start);
    let mut units = 0u32;
    for (i, c) in line.char_indices() {
        let next = units + c.len_utf16() as u32;
        if next > pos.character {
            return start + i;
        }
        units = next;
    }
    start + line.len()
}

/// The protocol position of a byte offset in `text` (clamped to the text and
/// moved back to a character boundary).
pub fn position(text: &str, byte: usize) -> Position {
    let mut byte = byte.min(text.len());
    while !text.is_char_boundary(byte) {
        byte -= 1;
    }
    let before = &text[..byte];
    let line = before.matches('\n').count() as u32;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let character = text[start..byte].encode_utf16().count() as u32;
    Position::new(line, character)
}

pub fn range(text: &str, bytes: std::ops::Range<usize>) -> Range {
    Range::new(position(text, bytes.start), position(text, bytes.end))
}

/// The protocol range of a strata region (1-based, inclusive character
/// columns) in the file it was found in.
pub fn region_range(file: &SourceFile, region: Region) -> Range {
    let region = region.normalized();
    let start = file.offset(region.start);
    // The end column is inclusive: the range ends after that character.
    let end = file.offset(Pos::new(region.end.line, region.end.col.saturating_add(1)));
    range(&file.text, start..end.max(start))
}

/// Applies the changes of one `didChange`, in order: a change with a range
/// replaces it, one without replaces the whole text.
pub fn apply_changes(text: &mut String, changes: Vec<TextDocumentContentChangeEvent>) {
    for change in changes {
        match change.range {
            Some(r) => {
                let start = offset(text, r.start);
                let end = offset(text, r.end).max(start);
                text.replace_range(start..end, &change.text);
            }
            None => *text = change.text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "é" is one UTF-16 unit and two bytes, "😀" two units and four bytes.
    const TEXT: &str = "-- é😀x\r\nCREATE TABLE \"😀\" (a int);\nlast";

    #[test]
    fn offsets_count_utf16_units() {
        assert_eq!(offset(TEXT, Position::new(0, 0)), 0);
        assert_eq!(offset(TEXT, Position::new(0, 3)), 3); // before é
        assert_eq!(offset(TEXT, Position::new(0, 4)), 5); // before 😀
        assert_eq!(offset(TEXT, Position::new(0, 6)), 9); // before x
                                                          // Inside the surrogate pair: the start of the emoji.
        assert_eq!(offset(TEXT, Position::new(0, 5)), 5);
        // Past the end of the line: before its \r\n.
        assert_eq!(offset(TEXT, Position::new(0, 99)), 10);
        assert_eq!(offset(TEXT, Position::new(1, 14)), 12 + 14);
        assert_eq!(offset(TEXT, Position::new(2, 4)), TEXT.len());
        assert_eq!(offset(TEXT, Position::new(9, 0)), TEXT.len());
    }

    #[test]
    fn positions_round_trip() {
        // Line terminators are not inside any line: skip them.
        for (byte, _) in TEXT.char_indices().filter(|(_, c)| *c != '\r' && *c != '\n') {
            assert_eq!(offset(TEXT, position(TEXT, byte)), byte, "byte {byte}");
        }
        assert_eq!(position(TEXT, 9), Position::new(0, 6));
        // The middle of a character moves back to its start.
        assert_eq!(position(TEXT, 7), Position::new(0, 4));
        assert_eq!(position(TEXT, usize::MAX), Position::new(2, 4));
    }

    #[test]
    fn regions_become_exclusive_utf16_ranges() {
        let file = SourceFile::new("a.sql".into(), TEXT.into());
        // `"😀"` on line 2: characters 14..=16, UTF-16 units 13..17.
        let r = region_range(&file, Region::new(Pos::new(2, 14), Pos::new(2, 16)));
        assert_eq!(r, Range::new(Position::new(1, 13), Position::new(1, 17)));
        // A whole first line up to x.
        let r = region_range(&file, Region::new(Pos::new(1, 1), Pos::new(1, 6)));
        assert_eq!(r, Range::new(Position::new(0, 0), Position::new(0, 7)));
        // An end past the line stops at the line's end; column 0 is column 1.
        let r = region_range(&file, Region::new(Pos::new(3, 0), Pos::new(3, 99)));
        assert_eq!(r, Range::new(Position::new(2, 0), Position::new(2, 4)));
    }

    #[test]
    fn incremental_changes() {
        let mut text = TEXT.to_string();
        let change = |range: Option<Range>, text: &str| TextDocumentContentChangeEvent {
            range,
            range_length: None,
            text: text.to_string(),
        };
        apply_changes(
            &mut text,
            vec![
                // Replace the emoji of line 2 by "t", then insert at the end.
                change(Some(Range::new(Position::new(1, 14), Position::new(1, 16))), "t"),
                change(Some(Range::new(Position::new(2, 4), Position::new(2, 4))), "!"),
            ],
        );
        assert_eq!(text, "-- é😀x\r\nCREATE TABLE \"t\" (a int);\nlast!");
        apply_changes(&mut text, vec![change(None, "new")]);
        assert_eq!(text, "new");
    }
}
