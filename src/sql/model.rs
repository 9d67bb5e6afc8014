//! strata's model of the statements only PostgreSQL's grammar reads: what
//! the catalog replay and the rules need of them, read from PostgreSQL's
//! raw parse tree. Names are folded as PostgreSQL folds them.

use super::postgres::protobuf::{self as pb, node::Node as N};
use super::Verdict;

/// A possibly qualified name, folded (`["app", "orders"]`).
pub type Name = Vec<String>;

/// The kinds of object a statement can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    Table,
    View,
    MaterializedView,
    Index,
    Sequence,
    Column,
    Constraint,
    Domain,
    Type,
    Function,
    Trigger,
    EventTrigger,
    Schema,
    Policy,
    Role,
    Statistics,
    Extension,
    Other,
}

impl ObjectKind {
    fn from_pg(t: i32) -> ObjectKind {
        use pb::ObjectType as O;
        match O::try_from(t).unwrap_or(O::Undefined) {
            O::ObjectTable | O::ObjectForeignTable => ObjectKind::Table,
            O::ObjectView => ObjectKind::View,
            O::ObjectMatview => ObjectKind::MaterializedView,
            O::ObjectIndex => ObjectKind::Index,
            O::ObjectSequence => ObjectKind::Sequence,
            O::ObjectColumn => ObjectKind::Column,
            O::ObjectTabconstraint | O::ObjectDomconstraint => ObjectKind::Constraint,
            O::ObjectDomain => ObjectKind::Domain,
            O::ObjectType => ObjectKind::Type,
            O::ObjectFunction | O::ObjectProcedure | O::ObjectRoutine | O::ObjectAggregate => ObjectKind::Function,
            O::ObjectTrigger => ObjectKind::Trigger,
            O::ObjectEventTrigger => ObjectKind::EventTrigger,
            O::ObjectSchema => ObjectKind::Schema,
            O::ObjectPolicy => ObjectKind::Policy,
            O::ObjectRole => ObjectKind::Role,
            O::ObjectStatisticExt => ObjectKind::Statistics,
            O::ObjectExtension => ObjectKind::Extension,
            _ => ObjectKind::Other,
        }
    }
}

/// A domain's definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Domain {
    pub name: Name,
    pub data_type: String,
    pub not_null: bool,
    pub has_default: bool,
    /// CHECK expressions, as PostgreSQL deparses them.
    pub checks: Vec<String>,
}

/// One change of `ALTER DOMAIN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainChange {
    SetNotNull,
    DropNotNull,
    SetDefault,
    DropDefault,
    AddCheck { not_valid: bool },
    DropConstraint,
    ValidateConstraint,
    Other,
}

/// What a GRANT or REVOKE is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantTarget {
    /// Named objects of one kind.
    Objects { kind: ObjectKind, names: Vec<Name> },
    /// `ALL TABLES | SEQUENCES | FUNCTIONS | ROUTINES IN SCHEMA s, ...`.
    AllInSchema { kind: ObjectKind, schemas: Vec<String> },
    /// The objects created later (`ALTER DEFAULT PRIVILEGES`).
    Future { kind: ObjectKind },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub is_grant: bool,
    /// Lower-cased privileges; empty for `ALL [PRIVILEGES]`.
    pub privileges: Vec<String>,
    pub target: GrantTarget,
    /// Role names; `public` for PUBLIC.
    pub grantees: Vec<String>,
}

/// A function's properties that rules judge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FunctionDef {
    pub name: Name,
    pub language: String,
    pub volatile: bool,
    pub security_definer: bool,
    pub sets_search_path: bool,
    pub procedure: bool,
    pub replace: bool,
}

/// A column as `ALTER TABLE ... ADD COLUMN` defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnDef {
    pub name: String,
    pub data_type: String,
    pub not_null: bool,
    /// A `DEFAULT` (a generation expression is not one).
    pub has_default: bool,
    pub identity: bool,
    pub generated: Option<Generated>,
}

/// How a generated column (`GENERATED ALWAYS AS (expr)`) keeps its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Generated {
    /// `STORED`: computed on write, stored in every row.
    Stored,
    /// `VIRTUAL`, PostgreSQL 18's default when neither keyword is written:
    /// computed on read, nothing stored.
    Virtual,
}

/// One operation of an `ALTER TABLE` only PostgreSQL read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableOp {
    AddColumn(ColumnDef),
    DropColumn(String),
    SetNotNull(String),
    DropNotNull(String),
    SetDefault(String),
    DropDefault(String),
    SetType {
        column: String,
        data_type: String,
    },
    /// `ADD GENERATED ... AS IDENTITY`, `SET GENERATED`, identity options.
    Identity {
        column: String,
        added: bool,
    },
    DropIdentity(String),
    EnableRls,
    DisableRls,
    ForceRls,
    NoForceRls,
    DetachPartition {
        concurrently: bool,
        finalize: bool,
    },
    /// `ATTACH PARTITION partition ...`.
    AttachPartition {
        partition: Name,
    },
    /// `ADD [CONSTRAINT name] NOT NULL column [NOT VALID]` (PostgreSQL 18).
    AddNotNull {
        name: Option<String>,
        column: String,
        not_valid: bool,
    },
    ValidateConstraint(String),
    DropConstraint(String),
    /// `ALTER COLUMN column SET EXPRESSION AS (...)` (PostgreSQL 17).
    SetExpression(String),
    /// Anything else (storage parameters, owners, replica identity, ...).
    Other(String),
}

/// A statement only PostgreSQL's grammar read, as strata models it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Model {
    CreateDomain(Domain),
    AlterDomain {
        name: Name,
        change: DomainChange,
    },
    CreateTrigger {
        name: String,
        table: Name,
        function: Name,
        replace: bool,
    },
    CreateEventTrigger {
        name: String,
        event: String,
        function: Name,
    },
    /// Any `ALTER ... RENAME`: `table` is set for objects that live in a
    /// table (columns, constraints, triggers, policies).
    Rename {
        kind: ObjectKind,
        object: Name,
        table: Option<Name>,
        to: String,
    },
    CreateSequence {
        name: Name,
    },
    AlterSequence {
        name: Name,
        restart: bool,
    },
    Drop {
        kind: ObjectKind,
        names: Vec<Name>,
        concurrently: bool,
        cascade: bool,
    },
    Grant(Grant),
    GrantRole {
        is_grant: bool,
        roles: Vec<String>,
        grantees: Vec<String>,
    },
    DefaultPrivileges {
        schemas: Vec<String>,
        for_roles: Vec<String>,
        grant: Grant,
    },
    Comment {
        kind: ObjectKind,
        object: Name,
        text: Option<String>,
    },
    CreateStatistics {
        name: Name,
        tables: Vec<Name>,
    },
    CreateFunction(FunctionDef),
    CreateRole {
        name: String,
    },
    AlterTable {
        table: Name,
        ops: Vec<TableOp>,
    },
    Do {
        language: String,
    },
    /// `CREATE INDEX ... ON ONLY t (...)` (sqlparser has no `ONLY` there):
    /// on a partitioned table, the parent's index alone, built for no
    /// partition (invalid until each partition's is attached).
    CreateIndexOnly {
        name: Option<String>,
        table: Name,
        columns: Vec<String>,
        unique: bool,
        concurrently: bool,
        if_not_exists: bool,
    },
    /// `CREATE TABLE t (LIKE source [INCLUDING ...], ...)`, alone or beside
    /// columns and constraints (sqlparser reads only a lone `LIKE` with
    /// `INCLUDING DEFAULTS`).
    CreateTableLike {
        table: Name,
        /// Each source and its `INCLUDING` options, PostgreSQL's
        /// `CREATE_TABLE_LIKE_*` bits ([`like`]).
        sources: Vec<(Name, u32)>,
        temporary: bool,
        /// `PARTITION BY`: a partitioned table.
        partitioned: bool,
        if_not_exists: bool,
        /// sqlparser's reading of the statement without its `LIKE` clauses
        /// (its name, its own columns and constraints; its `like` names the
        /// first source): what the rules that read a `CREATE TABLE` judge
        /// ([`Statement::ast`](super::Statement::ast)), and what the replay
        /// adds after the copied columns. Set by the reader of the statement,
        /// `None` when sqlparser cannot read even that.
        rest: Option<Box<sqlparser::ast::Statement>>,
    },
    /// A statement that changes nothing strata models and that no rule
    /// judges (roles' options, settings, session commands, ...), named by
    /// its PostgreSQL parse node.
    NoSchemaEffect(&'static str),
    /// Creates or changes an object the catalog does not keep (an
    /// aggregate, operator, cast, collation, text search object, tablespace,
    /// foreign server's user mapping, ...): nothing to replay, but a schema
    /// change, named for the rules that judge one (`ddl-in-function`).
    Untracked(&'static str),
}

/// Reads PostgreSQL's parse tree of one statement (`text` is its source).
pub fn read(tree: &pb::ParseResult, text: &str) -> Verdict {
    let Some(node) = tree.stmts.first().and_then(|s| s.stmt.as_ref()).and_then(|n| n.node.as_ref()) else {
        // Only comments: nothing to check.
        return Verdict::Modeled(Box::new(Model::NoSchemaEffect("empty")));
    };
    let _ = text;
    match model_of(node) {
        Some(m) => Verdict::Modeled(Box::new(m)),
        None => Verdict::Accepted(node_name(node)),
    }
}

/// The PostgreSQL parse node's name (`CreateForeignTableStmt`).
fn node_name(node: &N) -> String {
    let debug = format!("{node:?}");
    debug.split(['(', ' ', '{']).next().unwrap_or("statement").to_string()
}

fn model_of(node: &N) -> Option<Model> {
    Some(match node {
        N::CreateDomainStmt(s) => {
            let mut d = Domain {
                name: strings(&s.domainname),
                data_type: s.type_name.as_ref().map(type_name).unwrap_or_default(),
                not_null: false,
                has_default: false,
                checks: Vec::new(),
            };
            for c in s.constraints.iter().filter_map(constraint) {
                match pb::ConstrType::try_from(c.contype) {
                    Ok(pb::ConstrType::ConstrNotnull) => d.not_null = true,
                    Ok(pb::ConstrType::ConstrNull) => d.not_null = false,
                    Ok(pb::ConstrType::ConstrDefault) => d.has_default = true,
                    Ok(pb::ConstrType::ConstrCheck) => d.checks.push(deparse_expr(c.raw_expr.as_deref())),
                    _ => {}
                }
            }
            Model::CreateDomain(d)
        }
        N::AlterDomainStmt(s) => {
            let change = match s.subtype.as_str() {
                "O" => DomainChange::SetNotNull,
                "N" => DomainChange::DropNotNull,
                "T" if s.def.is_some() => DomainChange::SetDefault,
                "T" => DomainChange::DropDefault,
                "C" => DomainChange::AddCheck {
                    not_valid: s
                        .def
                        .as_deref()
                        .and_then(|d| d.node.as_ref())
                        .and_then(|n| match n {
                            N::Constraint(c) => Some(c.skip_validation),
                            _ => None,
                        })
                        .unwrap_or(false),
                },
                "X" => DomainChange::DropConstraint,
                "V" => DomainChange::ValidateConstraint,
                _ => DomainChange::Other,
            };
            Model::AlterDomain {
                name: strings(&s.type_name),
                change,
            }
        }
        N::CreateTrigStmt(s) => Model::CreateTrigger {
            name: s.trigname.clone(),
            table: s.relation.as_ref().map(range_var).unwrap_or_default(),
            function: strings(&s.funcname),
            replace: s.replace,
        },
        N::CreateEventTrigStmt(s) => Model::CreateEventTrigger {
            name: s.trigname.clone(),
            event: s.eventname.clone(),
            function: strings(&s.funcname),
        },
        N::RenameStmt(s) => {
            let kind = ObjectKind::from_pg(s.rename_type);
            let relation = s.relation.as_ref().map(range_var);
            let (object, table) = match kind {
                ObjectKind::Column | ObjectKind::Constraint | ObjectKind::Trigger | ObjectKind::Policy => {
                    (vec![s.subname.clone()], relation.clone())
                }
                _ => (
                    relation
                        .clone()
                        .or_else(|| s.object.as_deref().map(object_name))
                        .unwrap_or_else(|| vec![s.subname.clone()]),
                    None,
                ),
            };
            Model::Rename {
                kind,
                object,
                table,
                to: s.newname.clone(),
            }
        }
        N::CreateSeqStmt(s) => Model::CreateSequence {
            name: s.sequence.as_ref().map(range_var).unwrap_or_default(),
        },
        N::AlterSeqStmt(s) => Model::AlterSequence {
            name: s.sequence.as_ref().map(range_var).unwrap_or_default(),
            restart: s.options.iter().filter_map(def_elem).any(|d| d.defname == "restart"),
        },
        N::DropStmt(s) => Model::Drop {
            kind: ObjectKind::from_pg(s.remove_type),
            names: s.objects.iter().map(object_name).collect(),
            concurrently: s.concurrent,
            cascade: s.behavior == pb::DropBehavior::DropCascade as i32,
        },
        N::GrantStmt(s) => Model::Grant(grant(s)),
        N::GrantRoleStmt(s) => Model::GrantRole {
            is_grant: s.is_grant,
            roles: s.granted_roles.iter().filter_map(access_priv_or_role).collect(),
            grantees: s.grantee_roles.iter().filter_map(role_spec).collect(),
        },
        N::AlterDefaultPrivilegesStmt(s) => {
            let mut schemas = Vec::new();
            let mut for_roles = Vec::new();
            for d in s.options.iter().filter_map(def_elem) {
                let values = d.arg.as_deref().map(list_strings).unwrap_or_default();
                match d.defname.as_str() {
                    "schemas" => schemas = values,
                    "roles" => for_roles = values,
                    _ => {}
                }
            }
            Model::DefaultPrivileges {
                schemas,
                for_roles,
                grant: grant(s.action.as_ref()?),
            }
        }
        N::CommentStmt(s) => Model::Comment {
            kind: ObjectKind::from_pg(s.objtype),
            object: s.object.as_deref().map(object_name).unwrap_or_default(),
            text: (!s.comment.is_empty()).then(|| s.comment.clone()),
        },
        N::CreateStatsStmt(s) => Model::CreateStatistics {
            name: strings(&s.defnames),
            tables: s
                .relations
                .iter()
                .filter_map(|n| match n.node.as_ref()? {
                    N::RangeVar(r) => Some(range_var(r)),
                    _ => None,
                })
                .collect(),
        },
        N::CreateFunctionStmt(s) => Model::CreateFunction(function_def(s)),
        N::CreateRoleStmt(s) => Model::CreateRole { name: s.role.clone() },
        // `ALTER TYPE t ADD/DROP/ALTER ATTRIBUTE` of a composite type and
        // `ALTER INDEX i SET (...)` / `ALTER COLUMN n SET STATISTICS` /
        // `ATTACH PARTITION` are AlterTableStmts too: no table is altered
        // (an index's options and statistics take a SHARE UPDATE EXCLUSIVE
        // lock, which blocks no reads or writes).
        N::AlterTableStmt(s) if s.objtype == pb::ObjectType::ObjectType as i32 => Model::Untracked("ALTER TYPE"),
        N::AlterTableStmt(s) if s.objtype == pb::ObjectType::ObjectIndex as i32 => Model::Untracked("ALTER INDEX"),
        N::AlterTableStmt(s) => Model::AlterTable {
            table: s.relation.as_ref().map(range_var).unwrap_or_default(),
            ops: s
                .cmds
                .iter()
                .filter_map(|n| match n.node.as_ref()? {
                    N::AlterTableCmd(c) => Some(table_op(c)),
                    _ => None,
                })
                .collect(),
        },
        N::IndexStmt(s) if s.relation.as_ref().is_some_and(|r| !r.inh) => Model::CreateIndexOnly {
            name: (!s.idxname.is_empty()).then(|| s.idxname.clone()),
            table: s.relation.as_ref().map(range_var).unwrap_or_default(),
            columns: s
                .index_params
                .iter()
                .filter_map(|p| match &p.node {
                    Some(N::IndexElem(e)) if !e.name.is_empty() => Some(e.name.clone()),
                    Some(N::IndexElem(e)) => Some(deparse_expr(e.expr.as_deref())),
                    _ => None,
                })
                .collect(),
            unique: s.unique,
            concurrently: s.concurrent,
            if_not_exists: s.if_not_exists,
        },
        N::CreateStmt(s)
            if !s.table_elts.is_empty()
                && s.table_elts.iter().any(|e| matches!(e.node, Some(N::TableLikeClause(_))))
                && s.inh_relations.is_empty()
                && s.partbound.is_none()
                && s.of_typename.is_none() =>
        {
            Model::CreateTableLike {
                table: s.relation.as_ref().map(range_var).unwrap_or_default(),
                sources: s
                    .table_elts
                    .iter()
                    .filter_map(|e| match &e.node {
                        Some(N::TableLikeClause(l)) => Some((l.relation.as_ref().map(range_var).unwrap_or_default(), l.options)),
                        _ => None,
                    })
                    .collect(),
                temporary: s.relation.as_ref().is_some_and(|r| r.relpersistence == "t"),
                partitioned: s.partspec.is_some(),
                if_not_exists: s.if_not_exists,
                rest: None,
            }
        }
        N::DoStmt(s) => Model::Do {
            language: s
                .args
                .iter()
                .filter_map(def_elem)
                .find(|d| d.defname == "language")
                .and_then(|d| d.arg.as_deref().and_then(string_of))
                .unwrap_or_else(|| "plpgsql".to_string()),
        },
        N::AlterRoleStmt(_) => Model::NoSchemaEffect("AlterRoleStmt"),
        N::AlterRoleSetStmt(_) => Model::NoSchemaEffect("AlterRoleSetStmt"),
        N::DropRoleStmt(_) => Model::NoSchemaEffect("DropRoleStmt"),
        N::VariableSetStmt(_) => Model::NoSchemaEffect("VariableSetStmt"),
        N::VariableShowStmt(_) => Model::NoSchemaEffect("VariableShowStmt"),
        N::AlterDatabaseSetStmt(_) => Model::NoSchemaEffect("AlterDatabaseSetStmt"),
        N::AlterSystemStmt(_) => Model::NoSchemaEffect("AlterSystemStmt"),
        N::NotifyStmt(_) => Model::NoSchemaEffect("NotifyStmt"),
        N::ListenStmt(_) => Model::NoSchemaEffect("ListenStmt"),
        N::SelectStmt(_) => Model::NoSchemaEffect("SelectStmt"),
        N::InsertStmt(_) => Model::NoSchemaEffect("InsertStmt"),
        N::UpdateStmt(_) => Model::NoSchemaEffect("UpdateStmt"),
        N::DeleteStmt(_) => Model::NoSchemaEffect("DeleteStmt"),
        N::TransactionStmt(_) => Model::NoSchemaEffect("TransactionStmt"),
        N::AlterOwnerStmt(_) => Model::NoSchemaEffect("AlterOwnerStmt"),
        N::AlterObjectSchemaStmt(_) => return None,
        N::AlterFunctionStmt(_) => Model::NoSchemaEffect("AlterFunctionStmt"),
        N::AlterEventTrigStmt(_) => Model::NoSchemaEffect("AlterEventTrigStmt"),
        N::SecLabelStmt(_) => Model::NoSchemaEffect("SecLabelStmt"),
        N::CheckPointStmt(_) => Model::NoSchemaEffect("CheckPointStmt"),
        N::VacuumStmt(_) => Model::NoSchemaEffect("VacuumStmt"),
        N::AlterStatsStmt(_) => Model::NoSchemaEffect("AlterStatsStmt"),
        N::RefreshMatViewStmt(_) => Model::NoSchemaEffect("RefreshMatViewStmt"),
        N::CreatePublicationStmt(_) => Model::NoSchemaEffect("CreatePublicationStmt"),
        N::AlterPublicationStmt(_) => Model::NoSchemaEffect("AlterPublicationStmt"),
        N::CreateSubscriptionStmt(_) => Model::NoSchemaEffect("CreateSubscriptionStmt"),
        N::AlterSubscriptionStmt(_) => Model::NoSchemaEffect("AlterSubscriptionStmt"),
        N::DropSubscriptionStmt(_) => Model::NoSchemaEffect("DropSubscriptionStmt"),
        N::ReindexStmt(_) => Model::NoSchemaEffect("ReindexStmt"),
        N::ClusterStmt(_) => Model::NoSchemaEffect("ClusterStmt"),
        N::LockStmt(_) => Model::NoSchemaEffect("LockStmt"),
        N::ExplainStmt(_) => Model::NoSchemaEffect("ExplainStmt"),
        N::CopyStmt(_) => Model::NoSchemaEffect("CopyStmt"),
        N::PrepareStmt(_) => Model::NoSchemaEffect("PrepareStmt"),
        N::ExecuteStmt(_) => Model::NoSchemaEffect("ExecuteStmt"),
        N::DeallocateStmt(_) => Model::NoSchemaEffect("DeallocateStmt"),
        N::DiscardStmt(_) => Model::NoSchemaEffect("DiscardStmt"),
        N::CallStmt(_) => Model::NoSchemaEffect("CallStmt"),
        N::CreatedbStmt(_) => Model::NoSchemaEffect("CreatedbStmt"),
        N::AlterExtensionStmt(_) => Model::NoSchemaEffect("AlterExtensionStmt"),
        N::ConstraintsSetStmt(_) => Model::NoSchemaEffect("ConstraintsSetStmt"),
        // Which objects belong to an extension: the objects stay as they are.
        N::AlterExtensionContentsStmt(_) => Model::NoSchemaEffect("AlterExtensionContentsStmt"),
        // Owners are not part of the catalog (ALTER ... OWNER TO neither).
        N::ReassignOwnedStmt(_) => Model::NoSchemaEffect("ReassignOwnedStmt"),
        N::DefineStmt(d) => Model::Untracked(match pb::ObjectType::try_from(d.kind) {
            Ok(pb::ObjectType::ObjectAggregate) => "CREATE AGGREGATE",
            Ok(pb::ObjectType::ObjectOperator) => "CREATE OPERATOR",
            Ok(pb::ObjectType::ObjectType) => "CREATE TYPE",
            Ok(pb::ObjectType::ObjectCollation) => "CREATE COLLATION",
            _ => "CREATE TEXT SEARCH",
        }),
        N::CreateCastStmt(_) => Model::Untracked("CREATE CAST"),
        N::CreateConversionStmt(_) => Model::Untracked("CREATE CONVERSION"),
        N::CreateAmStmt(_) => Model::Untracked("CREATE ACCESS METHOD"),
        N::CreateTransformStmt(_) => Model::Untracked("CREATE TRANSFORM"),
        N::CreateOpClassStmt(_) => Model::Untracked("CREATE OPERATOR CLASS"),
        N::CreateOpFamilyStmt(_) => Model::Untracked("CREATE OPERATOR FAMILY"),
        N::AlterOpFamilyStmt(_) => Model::Untracked("ALTER OPERATOR FAMILY"),
        N::AlterOperatorStmt(_) => Model::Untracked("ALTER OPERATOR"),
        N::AlterCollationStmt(_) => Model::Untracked("ALTER COLLATION"),
        N::AlterTsconfigurationStmt(_) | N::AlterTsdictionaryStmt(_) => Model::Untracked("ALTER TEXT SEARCH"),
        N::CreateUserMappingStmt(_) | N::AlterUserMappingStmt(_) | N::DropUserMappingStmt(_) => Model::Untracked("a user mapping change"),
        N::AlterForeignServerStmt(_) => Model::Untracked("ALTER SERVER"),
        N::CreateFdwStmt(_) | N::AlterFdwStmt(_) => Model::Untracked("a foreign-data wrapper change"),
        N::CreateTableSpaceStmt(_) => Model::Untracked("CREATE TABLESPACE"),
        N::DropTableSpaceStmt(_) => Model::Untracked("DROP TABLESPACE"),
        N::AlterTableSpaceOptionsStmt(_) => Model::Untracked("ALTER TABLESPACE"),
        _ => return None,
    })
}

fn grant(s: &pb::GrantStmt) -> Grant {
    let kind = ObjectKind::from_pg(s.objtype);
    let target = match pb::GrantTargetType::try_from(s.targtype) {
        Ok(pb::GrantTargetType::AclTargetAllInSchema) => GrantTarget::AllInSchema {
            kind,
            schemas: s.objects.iter().filter_map(string_of).collect(),
        },
        Ok(pb::GrantTargetType::AclTargetDefaults) => GrantTarget::Future { kind },
        _ => GrantTarget::Objects {
            kind,
            names: s.objects.iter().map(object_name).collect(),
        },
    };
    Grant {
        is_grant: s.is_grant,
        privileges: s.privileges.iter().filter_map(access_priv_or_role).collect(),
        target,
        grantees: s.grantees.iter().filter_map(role_spec).collect(),
    }
}

fn function_def(s: &pb::CreateFunctionStmt) -> FunctionDef {
    let mut f = FunctionDef {
        name: strings(&s.funcname),
        language: if s.sql_body.is_some() { "sql" } else { "" }.to_string(),
        volatile: true,
        security_definer: false,
        sets_search_path: false,
        procedure: s.is_procedure,
        replace: s.replace,
    };
    for d in s.options.iter().filter_map(def_elem) {
        let arg = d.arg.as_deref();
        match d.defname.as_str() {
            "language" => f.language = arg.and_then(string_of).unwrap_or_default().to_lowercase(),
            "volatility" => f.volatile = arg.and_then(string_of).is_some_and(|v| v == "volatile"),
            "security" => f.security_definer = arg.is_some_and(|a| matches!(&a.node, Some(N::Boolean(b)) if b.boolval)),
            "set" => {
                f.sets_search_path |= matches!(arg.and_then(|a| a.node.as_ref()),
                    Some(N::VariableSetStmt(v)) if v.name.eq_ignore_ascii_case("search_path"))
            }
            _ => {}
        }
    }
    f
}

fn table_op(c: &pb::AlterTableCmd) -> TableOp {
    use pb::AlterTableType as A;
    let column = c.name.clone();
    match A::try_from(c.subtype).unwrap_or(A::Undefined) {
        A::AtAddColumn => match c.def.as_deref().and_then(|d| d.node.as_ref()) {
            Some(N::ColumnDef(def)) => TableOp::AddColumn(column_def(def)),
            _ => TableOp::Other("ADD COLUMN".to_string()),
        },
        A::AtDropColumn => TableOp::DropColumn(column),
        A::AtSetNotNull => TableOp::SetNotNull(column),
        A::AtDropNotNull => TableOp::DropNotNull(column),
        A::AtColumnDefault if c.def.is_some() => TableOp::SetDefault(column),
        A::AtColumnDefault => TableOp::DropDefault(column),
        A::AtAlterColumnType => TableOp::SetType {
            data_type: match c.def.as_deref().and_then(|d| d.node.as_ref()) {
                Some(N::ColumnDef(def)) => def.type_name.as_ref().map(type_name).unwrap_or_default(),
                _ => String::new(),
            },
            column,
        },
        A::AtAddIdentity => TableOp::Identity { column, added: true },
        A::AtSetIdentity => TableOp::Identity { column, added: false },
        A::AtDropIdentity => TableOp::DropIdentity(column),
        A::AtEnableRowSecurity => TableOp::EnableRls,
        A::AtDisableRowSecurity => TableOp::DisableRls,
        A::AtForceRowSecurity => TableOp::ForceRls,
        A::AtNoForceRowSecurity => TableOp::NoForceRls,
        A::AtDetachPartition => TableOp::DetachPartition {
            concurrently: matches!(c.def.as_deref().and_then(|d| d.node.as_ref()), Some(N::PartitionCmd(p)) if p.concurrent),
            finalize: false,
        },
        A::AtDetachPartitionFinalize => TableOp::DetachPartition {
            concurrently: false,
            finalize: true,
        },
        A::AtAttachPartition => TableOp::AttachPartition {
            partition: match c.def.as_deref().and_then(|d| d.node.as_ref()) {
                Some(N::PartitionCmd(p)) => p.name.as_ref().map(range_var).unwrap_or_default(),
                _ => Vec::new(),
            },
        },
        A::AtAddConstraint => match c.def.as_deref().and_then(constraint) {
            Some(k) if pb::ConstrType::try_from(k.contype) == Ok(pb::ConstrType::ConstrNotnull) => {
                match k.keys.iter().find_map(string_of) {
                    Some(column) => TableOp::AddNotNull {
                        name: (!k.conname.is_empty()).then(|| k.conname.clone()),
                        column,
                        not_valid: k.skip_validation,
                    },
                    None => TableOp::Other("AT_AddConstraint".to_string()),
                }
            }
            _ => TableOp::Other("AT_AddConstraint".to_string()),
        },
        A::AtValidateConstraint => TableOp::ValidateConstraint(column),
        A::AtSetExpression => TableOp::SetExpression(column),
        A::AtDropConstraint => TableOp::DropConstraint(column),
        other => TableOp::Other(other.as_str_name().to_string()),
    }
}

fn column_def(def: &pb::ColumnDef) -> ColumnDef {
    let mut col = ColumnDef {
        name: def.colname.clone(),
        data_type: def.type_name.as_ref().map(type_name).unwrap_or_default(),
        not_null: def.is_not_null,
        has_default: def.raw_default.is_some(),
        identity: !def.identity.is_empty(),
        generated: None,
    };
    for c in def.constraints.iter().filter_map(constraint) {
        match pb::ConstrType::try_from(c.contype) {
            Ok(pb::ConstrType::ConstrNotnull | pb::ConstrType::ConstrPrimary) => col.not_null = true,
            Ok(pb::ConstrType::ConstrDefault) => col.has_default = true,
            Ok(pb::ConstrType::ConstrIdentity) => {
                col.identity = true;
                col.not_null = true;
            }
            Ok(pb::ConstrType::ConstrGenerated) => {
                col.generated = Some(if c.generated_kind == "s" {
                    Generated::Stored
                } else {
                    Generated::Virtual
                });
            }
            _ => {}
        }
    }
    col
}

fn constraint(n: &pb::Node) -> Option<&pb::Constraint> {
    match n.node.as_ref()? {
        N::Constraint(c) => Some(c),
        _ => None,
    }
}

fn def_elem(n: &pb::Node) -> Option<&pb::DefElem> {
    match n.node.as_ref()? {
        N::DefElem(d) => Some(d),
        _ => None,
    }
}

fn string_of(n: &pb::Node) -> Option<String> {
    match n.node.as_ref()? {
        N::String(s) => Some(s.sval.clone()),
        N::AConst(pb::AConst {
            val: Some(pb::a_const::Val::Sval(s)),
            ..
        }) => Some(s.sval.clone()),
        N::TypeName(t) => Some(type_name(t)),
        _ => None,
    }
}

fn strings(nodes: &[pb::Node]) -> Name {
    nodes.iter().filter_map(string_of).collect()
}

fn list_strings(n: &pb::Node) -> Vec<String> {
    match n.node.as_ref() {
        Some(N::List(l)) => l.items.iter().filter_map(|i| string_of(i).or_else(|| role_spec(i))).collect(),
        _ => string_of(n).into_iter().collect(),
    }
}

pub(super) fn range_var(r: &pb::RangeVar) -> Name {
    let mut name = Vec::new();
    if !r.schemaname.is_empty() {
        name.push(r.schemaname.clone());
    }
    name.push(r.relname.clone());
    name
}

/// The name an object node carries: a list of strings, a type name, a
/// function with its arguments, a relation or a plain string.
fn object_name(n: &pb::Node) -> Name {
    match n.node.as_ref() {
        Some(N::List(l)) => strings(&l.items),
        Some(N::ObjectWithArgs(o)) => strings(&o.objname),
        Some(N::TypeName(t)) => strings(&t.names),
        Some(N::RangeVar(r)) => range_var(r),
        Some(N::String(s)) => vec![s.sval.clone()],
        _ => Vec::new(),
    }
}

fn role_spec(n: &pb::Node) -> Option<String> {
    match n.node.as_ref()? {
        N::RoleSpec(r) => Some(match pb::RoleSpecType::try_from(r.roletype) {
            Ok(pb::RoleSpecType::RolespecPublic) => "public".to_string(),
            Ok(pb::RoleSpecType::RolespecCurrentUser) => "current_user".to_string(),
            Ok(pb::RoleSpecType::RolespecCurrentRole) => "current_role".to_string(),
            Ok(pb::RoleSpecType::RolespecSessionUser) => "session_user".to_string(),
            _ => r.rolename.clone(),
        }),
        N::String(s) => Some(s.sval.clone()),
        _ => None,
    }
}

fn access_priv_or_role(n: &pb::Node) -> Option<String> {
    match n.node.as_ref()? {
        N::AccessPriv(p) => Some(p.priv_name.to_lowercase()),
        _ => role_spec(n),
    }
}

/// A type as written, lower-cased, without the `pg_catalog.` PostgreSQL
/// adds to built-in types (`varchar(20)`, `text[]`).
fn type_name(t: &pb::TypeName) -> String {
    let parts: Vec<String> = strings(&t.names);
    let parts: Vec<&str> = parts.iter().map(String::as_str).filter(|p| *p != "pg_catalog").collect();
    let mut out = parts.join(".");
    let mods: Vec<String> = t
        .typmods
        .iter()
        .filter_map(|m| match m.node.as_ref()? {
            N::AConst(pb::AConst {
                val: Some(pb::a_const::Val::Ival(i)),
                ..
            }) => Some(i.ival.to_string()),
            _ => None,
        })
        .collect();
    if !mods.is_empty() {
        out.push_str(&format!("({})", mods.join(",")));
    }
    for _ in &t.array_bounds {
        out.push_str("[]");
    }
    out.to_lowercase()
}

/// PostgreSQL's text of an expression (a CHECK), by deparsing it inside a
/// `SELECT`.
fn deparse_expr(expr: Option<&pb::Node>) -> String {
    let Some(expr) = expr else { return String::new() };
    // Enum fields must hold real values: libpg_query asserts on 0 ("undefined").
    let select = pb::SelectStmt {
        limit_option: pb::LimitOption::Default as i32,
        op: pb::SetOperation::SetopNone as i32,
        target_list: vec![pb::Node {
            node: Some(N::ResTarget(Box::new(pb::ResTarget {
                val: Some(Box::new(expr.clone())),
                ..Default::default()
            }))),
        }],
        ..Default::default()
    };
    let tree = pb::ParseResult {
        version: 0,
        stmts: vec![pb::RawStmt {
            stmt: Some(Box::new(pb::Node {
                node: Some(N::SelectStmt(Box::new(select))),
            })),
            stmt_location: 0,
            stmt_len: 0,
        }],
    };
    pg_query::deparse(&tree, pg_query::DeparseOptions::default())
        .map(|s| s.strip_prefix("SELECT ").unwrap_or(&s).to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(sql: &str) -> Model {
        match read(&crate::sql::postgres::parse(sql).unwrap(), sql) {
            Verdict::Modeled(m) => *m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn domains() {
        let m = model("CREATE DOMAIN app.email AS varchar(200) NOT NULL CHECK (VALUE LIKE '%@%')");
        let Model::CreateDomain(d) = m else { panic!() };
        assert_eq!(d.name, vec!["app", "email"]);
        assert_eq!(d.data_type, "varchar(200)");
        assert!(d.not_null && !d.has_default);
        assert_eq!(d.checks, vec!["value LIKE '%@%'"]);
    }

    #[test]
    fn triggers_grants_and_renames() {
        assert_eq!(
            model("CREATE TRIGGER t BEFORE UPDATE ON s.orders FOR EACH ROW EXECUTE FUNCTION f('a', 1)"),
            Model::CreateTrigger {
                name: "t".into(),
                table: vec!["s".into(), "orders".into()],
                function: vec!["f".into()],
                replace: false
            }
        );
        let Model::Grant(g) = model("GRANT EXECUTE ON ALL ROUTINES IN SCHEMA api TO web_anon, PUBLIC") else {
            panic!()
        };
        assert_eq!(
            g.target,
            GrantTarget::AllInSchema {
                kind: ObjectKind::Function,
                schemas: vec!["api".into()]
            }
        );
        assert_eq!(g.grantees, vec!["web_anon", "public"]);
        assert_eq!(
            model("ALTER TRIGGER a ON t RENAME TO b"),
            Model::Rename {
                kind: ObjectKind::Trigger,
                object: vec!["a".into()],
                table: Some(vec!["t".into()]),
                to: "b".into()
            }
        );
        assert_eq!(
            model("ALTER SEQUENCE s RESTART WITH 10"),
            Model::AlterSequence {
                name: vec!["s".into()],
                restart: true
            }
        );
    }

    #[test]
    fn unmodeled_kinds_are_named() {
        let sql = "CREATE RULE r AS ON INSERT TO t DO INSTEAD NOTHING";
        assert!(matches!(read(&crate::sql::postgres::parse(sql).unwrap(), sql), Verdict::Accepted(n) if n == "RuleStmt"));
    }
}

/// PostgreSQL's `CREATE_TABLE_LIKE_*` options (`INCLUDING ...` of a `LIKE`
/// clause; `INCLUDING ALL` sets every bit).
pub mod like {
    pub const CONSTRAINTS: u32 = 1 << 2;
    pub const DEFAULTS: u32 = 1 << 3;
    pub const GENERATED: u32 = 1 << 4;
    pub const IDENTITY: u32 = 1 << 5;
    pub const INDEXES: u32 = 1 << 6;
}
