use super::CheckReport;
use crate::rules::RuleMeta;
use std::io::{self, Write};
pub fn render(_report: &CheckReport, _rules: &[&RuleMeta], _w: &mut dyn Write) -> io::Result<()> {
    unimplemented!()
}
