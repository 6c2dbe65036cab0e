//! The README's parameter tables are generated from the agents' meta-data;
//! this test fails when they drift. `HANFS_UPDATE_README=1 cargo test --test
//! it readme::` rewrites them.
use hanfs::ocf::Metadata;

const AGENTS: [(&str, &str); 4] = [
    ("nfs-export", include_str!("../../metadata/nfs-export.xml")),
    ("float-ip", include_str!("../../metadata/float-ip.xml")),
    (
        "statd-holding",
        include_str!("../../metadata/statd-holding.xml"),
    ),
    ("nfs-grace", include_str!("../../metadata/nfs-grace.xml")),
];

#[test]
fn readme_parameter_tables_match_meta_data() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let mut readme = std::fs::read_to_string(path).unwrap();
    let mut stale = Vec::new();
    for (name, xml) in AGENTS {
        let table = Metadata::parse(xml).unwrap().render_markdown();
        let open = format!("<!-- params:{name} -->\n");
        let close = "<!-- /params -->";
        let start = readme
            .find(&open)
            .unwrap_or_else(|| panic!("README lacks {open:?}"))
            + open.len();
        let end = start + readme[start..].find(close).expect("closing marker");
        if readme[start..end] != table {
            stale.push(name);
            readme.replace_range(start..end, &table);
        }
    }
    if std::env::var("HANFS_UPDATE_README").as_deref() == Ok("1") {
        std::fs::write(path, readme).unwrap();
    } else {
        assert!(stale.is_empty(), "README parameter tables out of date for {stale:?}: run HANFS_UPDATE_README=1 cargo test --test it readme::");
    }
}
