use super::CheckReport;
use std::io::{self, Write};
pub fn render(_report: &CheckReport, _w: &mut dyn Write) -> io::Result<()> {
    unimplemented!()
}
