//! Collision-safe names: `report.csv`, then `report-1.csv`, `report-2.csv`, …
//!
//! Used by every place that must not overwrite (move-to-processed, the `rename` exists-policy);
//! the actual no-replace guarantee comes from `Endpoint::rename(.., replace = false)`, this
//! only proposes candidates.

use crate::endpoint::{Endpoint, RemotePath};

use super::error::FileError;

/// The `n`-th candidate for `name` (0 = the name itself).
pub fn candidate(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_string();
    }
    match name.rfind('.') {
        Some(i) if i > 0 => format!("{}-{n}{}", &name[..i], &name[i..]),
        _ => format!("{name}-{n}"),
    }
}

/// The first candidate for `name` in `dir` that does not exist on `ep`.
pub async fn free_name(ep: &dyn Endpoint, dir: &RemotePath, name: &str) -> Result<RemotePath, FileError> {
    for n in 0..10_000 {
        let path = dir.join(&candidate(name, n)).map_err(|e| FileError::Name(e.to_string()))?;
        if ep.stat(&path).await?.is_none() {
            return Ok(path);
        }
    }
    Err(FileError::Name(format!("no free name for {name:?} in {dir} after 10000 tries")))
}

#[cfg(test)]
mod tests {
    use super::candidate;

    #[test]
    fn suffixes_before_the_extension() {
        assert_eq!(candidate("a.csv", 0), "a.csv");
        assert_eq!(candidate("a.csv", 2), "a-2.csv");
        assert_eq!(candidate("a.tar.gz", 1), "a.tar-1.gz");
        assert_eq!(candidate("README", 1), "README-1");
        assert_eq!(candidate(".hidden", 1), ".hidden-1");
    }
}
