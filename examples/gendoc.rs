//! Documentation generated from the agents' meta-data, so it cannot drift
//! from what the agents print.
//!
//!     cargo run --release --example gendoc -- man <outdir>
//!
//! writes `<outdir>/ocf_hanfs_<agent>.7` (troff, section 7, like
//! resource-agents' `ocf_heartbeat_*` pages) for every `metadata/*.xml` of
//! this source tree, and prints the paths written. The packages run it at
//! build time.
use hanfs::ocf::Metadata;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn descriptions() -> Result<Vec<(PathBuf, Metadata)>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("metadata");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no meta-data in {}", dir.display()));
    }
    files
        .into_iter()
        .map(|f| {
            let xml = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            let m = Metadata::parse(&xml).map_err(|e| format!("{}: {e}", f.display()))?;
            let stem = f.file_stem().unwrap_or_default().to_string_lossy();
            if m.name != stem {
                return Err(format!(
                    "{}: agent name {:?} differs from the file name",
                    f.display(),
                    m.name
                ));
            }
            Ok((f, m))
        })
        .collect()
}

fn man(out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for (_, m) in descriptions()? {
        let path = out.join(format!("ocf_hanfs_{}.7", m.name));
        std::fs::write(&path, m.render_man()).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["man", out] => man(Path::new(out)),
        _ => Err("usage: gendoc man <outdir>".into()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gendoc: {e}");
            ExitCode::FAILURE
        }
    }
}
