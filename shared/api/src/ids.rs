//! Public ids of fleet resources: `<prefix>` + a 26-character ULID (48-bit
//! millisecond time + 80 random bits, Crockford base32), so ids sort by creation.

use rand::Rng;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ULID_LEN: usize = 26;

/// A new id such as `veh_01JDQ6W1ZK9Y3M4N5P6Q7R8S9T`.
pub fn new_sortable_id(prefix: &str) -> String {
    let millis = u128::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let random: u128 = rand::rng().random::<u128>() & ((1 << 80) - 1);
    let mut value = (millis & ((1 << 48) - 1)) << 80 | random;
    let mut chars = [b'0'; ULID_LEN];
    for slot in chars.iter_mut().rev() {
        *slot = CROCKFORD[(value & 31) as usize];
        value >>= 5;
    }
    format!("{prefix}{}", std::str::from_utf8(&chars).expect("ASCII"))
}

/// Whether `id` has the shape of an id made by [`new_sortable_id`] with `prefix`.
/// Checked before any database read, so odd path values never reach DynamoDB.
pub fn is_sortable_id(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|rest| rest.len() == ULID_LEN && rest.bytes().all(|b| CROCKFORD.contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_have_the_prefix_and_sort_by_creation() {
        let first = new_sortable_id("veh_");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = new_sortable_id("veh_");
        assert!(is_sortable_id("veh_", &first) && is_sortable_id("veh_", &second));
        assert!(first < second, "{first} {second}");
        assert!(!is_sortable_id("insp_", &first));
    }

    #[test]
    fn odd_values_are_not_ids() {
        for odd in [
            "",
            "veh_",
            "veh_../../etc/passwd",
            "veh_%00",
            &format!("veh_{}", "0".repeat(500)),
            "veh_0000000000000000000000000u",
        ] {
            assert!(!is_sortable_id("veh_", odd), "{odd}");
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_any_input(s in ".{0,64}") {
            let _ = is_sortable_id("veh_", &s);
        }
    }
}
