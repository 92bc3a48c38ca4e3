//! Validated argon2id cost parameters (S1).

use std::fmt;

use super::ConfigError;

/// The OWASP Password Storage Cheat Sheet's equal-strength argon2id rows, as
/// `(m_cost KiB, t_cost)` with one lane. A configuration is accepted when it is at
/// least as strong as one row in both memory and passes.
pub const OWASP_MINIMUMS: [(u32, u32); 5] = [
    (47_104, 1),
    (19_456, 2),
    (12_288, 3),
    (9_216, 4),
    (7_168, 5),
];

/// Output (tag) length in bytes of every hash this library writes.
pub const OUTPUT_LEN: usize = 32;

/// Salt length in bytes of every hash this library writes.
pub const SALT_LEN: usize = 16;

/// argon2id cost parameters, checked once when they are built.
///
/// [`HashParams::default`] is the OWASP baseline m=19456 KiB, t=2, p=1.
/// [`HashParams::new`] refuses anything weaker than an OWASP row (see
/// [`OWASP_MINIMUMS`]); tests and benchmarks that need cheaper hashing use the
/// explicitly named `insecure_for_tests` constructor behind the `test-util` feature.
///
/// ```
/// use auth_core::password::HashParams;
///
/// let strong = HashParams::new(65_536, 3, 4)?;
/// assert_eq!(strong.m_cost(), 65_536);
/// assert!(HashParams::new(4_096, 1, 1).is_err());
/// # Ok::<(), auth_core::password::ConfigError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashParams {
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
}

impl HashParams {
    /// The OWASP baseline: m=19456 KiB, t=2, p=1.
    pub const OWASP: Self = Self {
        m_cost: 19_456,
        t_cost: 2,
        p_cost: 1,
    };

    /// Parameters of at least OWASP strength.
    ///
    /// # Errors
    /// [`ConfigError::WeakParams`] when no OWASP row is met, and
    /// [`ConfigError::InvalidParams`] when argon2 itself rejects the combination
    /// (for example fewer than 8 KiB per lane).
    pub fn new(m_cost: u32, t_cost: u32, p_cost: u32) -> Result<Self, ConfigError> {
        let params = Self::checked(m_cost, t_cost, p_cost)?;
        if !params.meets_owasp_minimum() {
            return Err(ConfigError::WeakParams {
                m_cost,
                t_cost,
                p_cost,
            });
        }
        Ok(params)
    }

    /// Parameters of any strength argon2 accepts, for tests and benchmarks only.
    ///
    /// # Errors
    /// [`ConfigError::InvalidParams`] when argon2 rejects the combination.
    #[cfg(feature = "test-util")]
    pub fn insecure_for_tests(m_cost: u32, t_cost: u32, p_cost: u32) -> Result<Self, ConfigError> {
        Self::checked(m_cost, t_cost, p_cost)
    }

    fn checked(m_cost: u32, t_cost: u32, p_cost: u32) -> Result<Self, ConfigError> {
        argon2::Params::new(m_cost, t_cost, p_cost, Some(OUTPUT_LEN))
            .map_err(ConfigError::InvalidParams)?;
        Ok(Self {
            m_cost,
            t_cost,
            p_cost,
        })
    }

    /// Memory cost in KiB per hash.
    #[must_use]
    pub const fn m_cost(&self) -> u32 {
        self.m_cost
    }

    /// Number of passes over memory.
    #[must_use]
    pub const fn t_cost(&self) -> u32 {
        self.t_cost
    }

    /// Number of lanes.
    #[must_use]
    pub const fn p_cost(&self) -> u32 {
        self.p_cost
    }

    /// Whether these parameters are at least as strong as one OWASP row.
    #[must_use]
    pub fn meets_owasp_minimum(&self) -> bool {
        OWASP_MINIMUMS
            .iter()
            .any(|&(m, t)| self.m_cost >= m && self.t_cost >= t)
    }

    /// Bytes of working memory one hash at these parameters needs.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        self.block_count() * argon2::Block::SIZE
    }

    /// Number of 1 KiB argon2 blocks one hash needs.
    pub(crate) fn block_count(&self) -> usize {
        self.argon2_params(&[]).map_or(0, |p| p.block_count())
    }

    /// The argon2 crate's parameters, with a pepper key id recorded when given.
    pub(crate) fn argon2_params(&self, key_id: &[u8]) -> Result<argon2::Params, argon2::Error> {
        let mut builder = argon2::ParamsBuilder::new();
        builder
            .m_cost(self.m_cost)
            .t_cost(self.t_cost)
            .p_cost(self.p_cost)
            .output_len(OUTPUT_LEN);
        if !key_id.is_empty() {
            builder.keyid(argon2::KeyId::new(key_id)?);
        }
        builder.build()
    }
}

impl Default for HashParams {
    fn default() -> Self {
        Self::OWASP
    }
}

impl fmt::Debug for HashParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={},t={},p={}", self.m_cost, self.t_cost, self.p_cost)
    }
}

impl fmt::Display for HashParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_the_owasp_baseline() {
        let p = HashParams::default();
        assert_eq!((p.m_cost(), p.t_cost(), p.p_cost()), (19_456, 2, 1));
        assert!(p.meets_owasp_minimum());
    }

    #[test]
    fn every_owasp_row_is_accepted_and_anything_weaker_refused() {
        for (m, t) in OWASP_MINIMUMS {
            assert!(HashParams::new(m, t, 1).is_ok(), "row m={m} t={t}");
            assert!(matches!(
                HashParams::new(m - 1, t, 1),
                Err(ConfigError::WeakParams { .. })
            ));
            if t > 1 {
                // One pass fewer is only fine if another row still covers it.
                let weaker = HashParams::new(m, t - 1, 1);
                let covered = OWASP_MINIMUMS.iter().any(|&(rm, rt)| m >= rm && t > rt);
                assert_eq!(weaker.is_ok(), covered, "m={m} t={}", t - 1);
            }
        }
    }

    #[test]
    fn argon2_invalid_combinations_are_refused() {
        assert!(matches!(
            HashParams::new(19_456, 0, 1),
            Err(ConfigError::InvalidParams(_))
        ));
        assert!(matches!(
            HashParams::new(19_456, 2, 0),
            Err(ConfigError::InvalidParams(_))
        ));
    }

    #[test]
    fn memory_bound_is_m_kib() {
        assert_eq!(HashParams::OWASP.memory_bytes(), 19_456 * 1024);
    }
}
