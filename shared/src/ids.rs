//! Opaque, type-prefixed ids (`prj_…`, `key_…`): 48 bits of milliseconds and
//! 80 random bits in Crockford base32, so ids sort by creation time and a
//! cursor can be the last id seen.

use rand::RngCore;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// The last id value handed out: ids made in one process are strictly
/// increasing even within a millisecond (then the random part counts up).
static LAST: std::sync::Mutex<u128> = std::sync::Mutex::new(0);

pub fn new_id(prefix: &str) -> String {
    let ms = crate::time::now_ms().max(0) as u128;
    let mut random = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut random);
    let mut value: u128 = ms << 80;
    for (i, b) in random.iter().enumerate() {
        value |= (*b as u128) << (8 * (9 - i));
    }
    {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        if value <= *last {
            value = *last + 1;
        }
        *last = value;
    }
    let mut out = String::with_capacity(prefix.len() + 27);
    out.push_str(prefix);
    out.push('_');
    for i in (0..26).rev() {
        out.push(ALPHABET[((value >> (5 * i)) & 31) as usize] as char);
    }
    out
}

/// Random lowercase base32 text of `len` characters (5 bits each).
pub fn random_base32(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| ALPHABET[(b & 31) as usize] as char)
        .collect()
}

/// Whether `s` looks like an id with this prefix (used to reject junk early).
pub fn is_id(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .is_some_and(|r| r.len() == 26 && r.bytes().all(|b| ALPHABET.contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_validate() {
        let a = new_id("prj");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id("prj");
        assert!(a < b);
        assert!(is_id("prj", &a));
        assert!(!is_id("usr", &a));
        assert!(!is_id("prj", "prj_../../etc"));
        let many: Vec<String> = (0..10_000).map(|_| new_id("evt")).collect();
        assert!(
            many.windows(2).all(|w| w[0] < w[1]),
            "ids within a millisecond must still increase"
        );
    }
}
