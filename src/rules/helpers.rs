//! Code several rules share: where a name is in the source, the columns a
//! statement defines, the byte range of a column's type (for fixes), and the
//! statements of a file that touch a table.

use std::sync::LazyLock;

use regex::Regex;
use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ArrayElemTypeDef, ColumnDef, ColumnOption, ColumnOptionDef, DataType, Ident, ObjectName,
    ObjectNamePart, Statement as Ast, TableConstraint,
};

use super::{ident_region, FileCtx, FileInfo, Finding, StatementCtx};
use crate::catalog::{ident_name, Catalog, Origin, QName, Table};
use crate::diag::{Edit, Fix, Pos, Region, SourceFile};

/// A statement that uses `what`, syntax PostgreSQL `since` introduced, when
/// the workspace's `pg_version` is older: the finding (at the keyword `kw`)
/// says the server rejects the statement; the caller adds the way out.
pub fn newer_syntax(cx: &StatementCtx, kw: &str, what: &str, since: u32) -> Option<Finding> {
    (cx.env.pg_version < since).then(|| {
        Finding::new(
            super::tokens::kw_region(cx, kw),
            format!(
                "{what} is PostgreSQL {since} syntax: PostgreSQL {} rejects the statement",
                cx.env.pg_version
            ),
        )
    })
}

/// Region of a (possibly qualified) object name, first part to last.
pub fn name_region(name: &ObjectName) -> Option<Region> {
    let idents: Vec<&Ident> = name
        .0
        .iter()
        .filter_map(|p| match p {
            ObjectNamePart::Identifier(id) => Some(id),
            ObjectNamePart::Function(_) => None,
        })
        .collect();
    let first = ident_region(idents.first()?)?;
    let last = ident_region(idents.last()?)?;
    Some(Region::new(first.start, last.end))
}

/// The region of statement `i` of the file (the whole file's start when out of range).
pub fn stmt_region(file: &FileInfo, i: usize) -> Region {
    file.parsed.statements.get(i).map(|s| s.region).unwrap_or_default()
}

/// Whether an object with this origin was created by the file under check.
pub fn in_file(cx: &FileCtx, origin: Origin) -> bool {
    origin.file == cx.file.id
}

/// The parsed statement an origin in this file points at.
pub fn origin_ast<'a>(cx: &FileCtx<'a>, origin: Origin) -> Option<&'a Ast> {
    if !in_file(cx, origin) {
        return None;
    }
    cx.file.parsed.statements.get(origin.stmt as usize).and_then(|s| s.ast())
}

/// The identifier of column `column` in the statement that defined or renamed
/// it (CREATE TABLE, ADD COLUMN, RENAME COLUMN ... TO), for precise regions.
pub fn column_ident<'a>(stmt: &'a Ast, column: &str) -> Option<&'a Ident> {
    match stmt {
        Ast::CreateTable(ct) => ct.columns.iter().map(|c| &c.name).find(|n| ident_name(n) == column),
        Ast::AlterTable(at) => at.operations.iter().find_map(|op| match op {
            AlterTableOperation::AddColumn { column_def, .. } if ident_name(&column_def.name) == column => Some(&column_def.name),
            AlterTableOperation::RenameColumn { new_column_name, .. } if ident_name(new_column_name) == column => Some(new_column_name),
            _ => None,
        }),
        _ => None,
    }
}

/// Where to report something about table `t`: its name in the CREATE TABLE
/// when this file created it, else the whole file (line 0).
pub fn table_site(cx: &FileCtx, t: &Table) -> (Region, Option<usize>) {
    if in_file(cx, t.origin) {
        (super::rls_missing::created_region(cx, t), Some(t.origin.stmt as usize))
    } else {
        (Region::default(), None)
    }
}

/// Where to report something about column `column` of `t`: its name in
/// statement `stmt` of this file (which defined or renamed it), else that
/// statement, else the table.
pub fn column_site(cx: &FileCtx, t: &Table, column: &str, stmt: Option<usize>) -> (Region, Option<usize>) {
    let Some(i) = stmt.filter(|&i| i < cx.file.parsed.statements.len()) else {
        return table_site(cx, t);
    };
    let s = &cx.file.parsed.statements[i];
    let region = s
        .ast()
        .and_then(|a| column_ident(a, column))
        .and_then(ident_region)
        .unwrap_or(s.region);
    (region, Some(i))
}

/// The statement index of `origin` when it is in this file.
pub fn here(cx: &FileCtx, origin: Origin) -> Option<usize> {
    in_file(cx, origin).then_some(origin.stmt as usize)
}

/// How a statement gives a column its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeSource {
    CreateTable,
    AddColumn,
    /// `ALTER COLUMN ... TYPE`: options do not apply.
    AlterType,
}

/// A column a statement gives a type to.
pub struct TypedColumn<'a> {
    pub table: QName,
    pub name: &'a Ident,
    pub data_type: &'a DataType,
    pub options: &'a [ColumnOptionDef],
    pub source: TypeSource,
}

impl TypedColumn<'_> {
    pub fn has_option(&self, f: impl Fn(&ColumnOption) -> bool) -> bool {
        self.options.iter().any(|o| f(&o.option))
    }
}

/// Every column a CREATE TABLE, ALTER TABLE ADD COLUMN or ALTER COLUMN TYPE
/// gives a type to.
pub fn typed_columns<'a>(stmt: &'a Ast, catalog: &Catalog) -> Vec<TypedColumn<'a>> {
    let def = |table: &QName, c: &'a ColumnDef, source| TypedColumn {
        table: table.clone(),
        name: &c.name,
        data_type: &c.data_type,
        options: &c.options,
        source,
    };
    match stmt {
        Ast::CreateTable(ct) => {
            let table = catalog.resolve(&ct.name);
            ct.columns.iter().map(|c| def(&table, c, TypeSource::CreateTable)).collect()
        }
        Ast::AlterTable(at) => {
            let table = catalog.resolve(&at.name);
            at.operations
                .iter()
                .filter_map(|op| match op {
                    AlterTableOperation::AddColumn { column_def, .. } => Some(def(&table, column_def, TypeSource::AddColumn)),
                    AlterTableOperation::AlterColumn {
                        column_name,
                        op: AlterColumnOperation::SetDataType { data_type, .. },
                    } => Some(TypedColumn {
                        table: table.clone(),
                        name: column_name,
                        data_type,
                        options: &[],
                        source: TypeSource::AlterType,
                    }),
                    _ => None,
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// The element type of an array type (`json[]` → `json`), else the type.
pub fn base_type(t: &DataType) -> &DataType {
    match t {
        DataType::Array(
            ArrayElemTypeDef::SquareBracket(inner, _)
            | ArrayElemTypeDef::AngleBracket(inner)
            | ArrayElemTypeDef::Parenthesis(inner)
            | ArrayElemTypeDef::Qualified(inner, _),
        ) => base_type(inner),
        _ => t,
    }
}

/// Whether a table-level constraint of a CREATE TABLE names `column` as (part
/// of) its primary key.
pub fn in_table_primary_key(stmt: &Ast, column: &str) -> bool {
    let Ast::CreateTable(ct) = stmt else { return false };
    ct.constraints.iter().any(|c| match c {
        TableConstraint::PrimaryKey(pk) => pk.columns.iter().any(|ic| ic.column.expr.to_string().to_lowercase() == column),
        _ => false,
    })
}

/// The written type of a column, located in the source: the byte range and
/// the text, for fixes and precise carets.
pub struct TypeText<'a> {
    pub start: usize,
    pub end: usize,
    pub text: &'a str,
}

static TYPE_PREFIX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?is)^\s*(?:set\s+data\s+type\s+|type\s+)?").expect("regex"));

/// Matches `pattern` (anchored, case-insensitive) where the type of column
/// `name` starts: right after the name in a column definition, or after
/// `TYPE` / `SET DATA TYPE` in ALTER COLUMN.
pub fn find_type<'a>(source: &'a SourceFile, name: &Ident, pattern: &Regex) -> Option<TypeText<'a>> {
    let end = name.span.end;
    if end.line == 0 {
        return None;
    }
    let after = source.offset(Pos::new(end.line as u32, end.column as u32));
    let text = source.text.as_str();
    let rest = text.get(after..)?;
    let skip = TYPE_PREFIX.find(rest).map_or(0, |m| m.end());
    let m = pattern.find(&rest[skip..])?;
    let start = after + skip + m.start();
    let stop = after + skip + m.end();
    Some(TypeText {
        start,
        end: stop,
        text: &text[start..stop],
    })
}

/// A region from a byte range of the file (`end` exclusive).
pub fn byte_region(source: &SourceFile, start: usize, end: usize) -> Region {
    let last = source.text[..end.max(start + 1).min(source.text.len())]
        .char_indices()
        .next_back()
        .map_or(start, |(b, _)| b.max(start));
    Region::new(source.position(start), source.position(last))
}

/// A one-edit fix.
pub fn replace_fix(description: impl Into<String>, start: usize, end: usize, replacement: impl Into<String>) -> Fix {
    Fix {
        description: description.into(),
        edits: vec![Edit {
            start,
            end,
            replacement: replacement.into(),
        }],
        new_file: None,
    }
}

/// `ALTER TABLE` operations of this file, with the statement index and the
/// table they apply to (resolved against the catalog after the file).
pub fn alter_ops<'a>(cx: &FileCtx<'a>) -> Vec<(usize, QName, &'a AlterTableOperation)> {
    let mut out = Vec::new();
    for (i, s) in cx.file.parsed.statements.iter().enumerate() {
        if let Some(Ast::AlterTable(at)) = s.ast() {
            let table = cx.catalog.resolve(&at.name);
            out.extend(at.operations.iter().map(|op| (i, table.clone(), op)));
        }
    }
    out
}

/// Whether `name` (a table's bare or qualified name as configured) is `q`.
pub fn names_table(name: &str, q: &QName) -> bool {
    let name = name.to_lowercase();
    match name.split_once('.') {
        Some((schema, table)) => schema == q.schema && table == q.name,
        None => name == q.name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip() {
        let f = SourceFile::new("t.sql".into(), "ab\nçd é\n\nx".into());
        for p in [Pos::new(1, 1), Pos::new(2, 1), Pos::new(2, 2), Pos::new(2, 4), Pos::new(4, 1)] {
            assert_eq!(f.position(f.offset(p)), p);
        }
        assert_eq!(
            byte_region(&f, f.offset(Pos::new(2, 1)), f.offset(Pos::new(2, 3))),
            Region::new(Pos::new(2, 1), Pos::new(2, 2))
        );
    }

    #[test]
    fn configured_table_names() {
        let q = QName::new("orbis_state", "events");
        assert!(names_table("orbis_state.events", &q));
        assert!(names_table("events", &q));
        assert!(!names_table("public.events", &q));
    }
}
