//! Media files (images, audio, video, PDF in the content dir): which ones are served. Each
//! is checked as articles are opened (inside the content dir, a regular file, not empty,
//! at most `max_media_bytes`) when its stamp changes, and never read: requests send it
//! from the file.

use super::*;

impl Engine {
    /// Takes the media paths out of `touched` and brings the served set up to date with them
    /// and with `gone`. True when the set changed.
    pub(super) fn apply_media(
        &mut self,
        touched: &mut BTreeSet<String>,
        gone: &BTreeSet<String>,
    ) -> bool {
        let media: Vec<String> = touched
            .iter()
            .filter(|p| content::media_type(Path::new(p)).is_some())
            .cloned()
            .collect();
        let mut changed = false;
        for rel in gone {
            changed |= self.seen.media.remove(rel).is_some();
        }
        for rel in media {
            touched.remove(&rel);
            let Some(content_type) = content::media_type(Path::new(&rel)) else {
                continue;
            };
            let now = stamp(&self.root().join(&rel));
            if let (Some(st), Some(known)) = (now, self.seen.media.get(&rel)) {
                if st == known.stamp {
                    continue;
                }
            }
            match self.loader.open_media(&rel) {
                Ok((_, meta)) => {
                    self.seen.read(&rel);
                    let media = Arc::new(Media {
                        rel: rel.clone(),
                        content_type,
                        stamp: stamp_of(&meta),
                    });
                    self.seen.media.insert(rel, media);
                    changed = true;
                }
                Err(s) => {
                    if now.is_some() {
                        self.seen.skipped(&s, &self.metrics);
                    }
                    changed |= self.seen.media.remove(&rel).is_some();
                }
            }
        }
        if changed {
            self.publisher.set_media(MediaFiles {
                by_path: self.seen.media.clone(),
                loader: Some(self.loader.clone()),
            });
        }
        changed
    }
}
