use super::{CheckReport, RenderOptions};
use std::io::{self, Write};
pub fn render(_report: &CheckReport, _opts: &RenderOptions, _w: &mut dyn Write) -> io::Result<()> {
    unimplemented!()
}
