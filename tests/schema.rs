//! The bundled canonical schema keeps its own promises.

use std::path::Path;

use strata::catalog::{Catalog, Origin};
use strata::workspace::Workspace;

fn replay(ws: &Workspace, layers: &[usize]) -> Catalog {
    let mut cat = Catalog::new();
    let mut file = 0u32;
    for &li in layers {
        for m in &ws.layers[li].migrations {
            let parsed = strata::check::load_file(&m.path, ws.display(&m.path)).unwrap();
            for (i, s) in parsed.statements.iter().enumerate() {
                let ast = s
                    .ast()
                    .unwrap_or_else(|| panic!("{}: unparsed statement {:?}", parsed.source.path, s.unparsed()));
                cat.apply(
                    ast,
                    Origin {
                        file,
                        layer: li as u16,
                        stmt: i as u32,
                    },
                );
            }
            file += 1;
        }
    }
    cat
}

#[test]
fn every_table_has_a_comment_rls_and_no_lid_column_in_every_composition() {
    let ws = Workspace::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let comps = ws.compositions();
    assert!(comps.len() >= 7, "core, five verticals and a bespoke layer: {}", comps.len());
    for comp in comps {
        let cat = replay(&ws, &comp.layers);
        assert!(!cat.tables.is_empty());
        for t in cat.tables.values() {
            assert!(
                t.comment.as_deref().is_some_and(|c| !c.is_empty()),
                "{}: {} has no COMMENT ON TABLE",
                comp.label,
                t.name
            );
            assert!(t.rls_enabled && t.rls_forced, "{}: {} lacks RLS", comp.label, t.name);
            assert!(!t.policies.is_empty(), "{}: {} has no policy", comp.label, t.name);
            assert!(
                t.columns.iter().all(|c| !c.name.contains("lid")),
                "{}: {} stores a LID",
                comp.label,
                t.name
            );
        }
        // contacts is the only person record, in every composition.
        assert!(cat.tables.keys().any(|k| k.name == "contacts"));
        for banned in ["users", "people", "persons", "customers", "members", "profiles"] {
            assert!(!cat.tables.keys().any(|k| k.name == banned), "{}: {banned}", comp.label);
        }
    }
}

#[test]
fn the_ai_vertical_declares_pgvector_and_five_verticals_exist() {
    let ws = Workspace::load(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
    let verticals: Vec<&str> = ws
        .layers
        .iter()
        .filter(|l| l.kind == strata::workspace::LayerKind::Vertical)
        .map(|l| l.name.as_str())
        .collect();
    for v in ["agency", "crm", "messaging", "ai", "travel"] {
        assert!(verticals.contains(&v), "{v} missing: {verticals:?}");
    }
    let ai = ws.layer(strata::workspace::LayerKind::Vertical, "ai").unwrap();
    let cat = replay(&ws, &[ws.layer(strata::workspace::LayerKind::Core, "core").unwrap(), ai]);
    assert!(cat.extensions.contains_key("vector"));
}
