//! `Accept-Encoding` negotiation (RFC 9110 §12.5.3): q-values, `*`, `identity`, `q=0`.

use crate::serve::coding::Coding;

/// The coding to send: the acceptable one with the highest q-value, preferring br over gzip
/// over identity on ties. Identity is used when nothing else is acceptable, even if the
/// client refused it (a body it can read beats a 406 for a feed reader).
pub fn negotiate(header: Option<&str>, available: &[Coding]) -> Coding {
    let Some(header) = header else {
        return Coding::Identity;
    };
    let mut q_br = None;
    let mut q_gzip = None;
    let mut q_identity = None;
    let mut q_star = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if name.is_empty() {
            continue;
        }
        let mut q = 1.0f32;
        for p in parts {
            let p = p.trim();
            if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                q = v
                    .trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|q| q.is_finite())
                    .unwrap_or(0.0)
                    .clamp(0.0, 1.0);
            }
        }
        let slot = match name.as_str() {
            "br" => &mut q_br,
            "gzip" | "x-gzip" => &mut q_gzip,
            "identity" => &mut q_identity,
            "*" => &mut q_star,
            _ => continue,
        };
        // The first occurrence wins.
        if slot.is_none() {
            *slot = Some(q);
        }
    }
    let q_of = |q: Option<f32>, default: f32| q.or(q_star).unwrap_or(default);
    let candidates = [
        (Coding::Brotli, q_of(q_br, 0.0)),
        (Coding::Gzip, q_of(q_gzip, 0.0)),
        // identity is acceptable unless explicitly refused (or refused through `*`).
        (
            Coding::Identity,
            q_identity.or(q_star.filter(|q| *q == 0.0)).unwrap_or(0.001),
        ),
    ];
    candidates
        .into_iter()
        .filter(|(c, q)| *q > 0.0 && available.contains(c))
        .fold(None, |best: Option<(Coding, f32)>, c| match best {
            Some(b) if b.1 >= c.1 => Some(b),
            _ => Some(c),
        })
        .map_or(Coding::Identity, |(c, _)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(header: Option<&str>, want: Coding) {
        let all = [Coding::Brotli, Coding::Gzip, Coding::Identity];
        assert_eq!(negotiate(header, &all), want, "{header:?}");
    }

    #[test]
    fn negotiation() {
        check(None, Coding::Identity);
        check(Some(""), Coding::Identity);
        check(Some("gzip"), Coding::Gzip);
        check(Some("gzip, deflate, br"), Coding::Brotli);
        check(Some("br;q=0, gzip"), Coding::Gzip);
        check(Some("gzip;q=0.5, br;q=0.4"), Coding::Gzip);
        check(Some("identity"), Coding::Identity);
        check(Some("*"), Coding::Brotli);
        check(Some("*;q=0.1, gzip;q=0"), Coding::Brotli);
        check(Some("deflate"), Coding::Identity);
        check(Some("identity;q=0, gzip;q=0"), Coding::Identity);
        check(Some("GZIP;Q=1"), Coding::Gzip);
        check(Some("gzip;q=nonsense"), Coding::Identity);
        check(Some("x-gzip"), Coding::Gzip);
    }

    #[test]
    fn only_available_codings_are_chosen() {
        let packed = [Coding::Gzip, Coding::Identity];
        assert_eq!(negotiate(Some("br, gzip"), &packed), Coding::Gzip);
        assert_eq!(negotiate(Some("br"), &packed), Coding::Identity);
    }
}
