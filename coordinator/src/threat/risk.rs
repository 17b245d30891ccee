//! The OWASP Risk Rating Methodology
//! (<https://owasp.org/www-community/OWASP_Risk_Rating_Methodology>): eight likelihood factors
//! (threat agent and vulnerability) and eight impact factors (technical and business), each 0–9.
//! Likelihood is the average of its factors; impact is the average of the business factors when
//! any is given (the methodology prefers business impact when it is known), of the technical ones
//! otherwise. Each average is over the factors that have a value: a factor nobody rated (a loss
//! the threat cannot cause) is left out rather than counted as 0. Each average maps to LOW (< 3), MEDIUM (< 6) or HIGH, and the two levels give the
//! severity from the methodology's matrix.

use std::fmt;

/// Factor names, in order: 8 likelihood factors, then 8 impact factors.
pub const FACTORS: [&str; 16] = [
    "skill_level",
    "motive",
    "opportunity",
    "size",
    "ease_of_discovery",
    "ease_of_exploit",
    "awareness",
    "intrusion_detection",
    "loss_of_confidentiality",
    "loss_of_integrity",
    "loss_of_availability",
    "loss_of_accountability",
    "financial_damage",
    "reputation_damage",
    "non_compliance",
    "privacy_violation",
];

pub const LIKELIHOOD: std::ops::Range<usize> = 0..8;
pub const TECHNICAL: std::ops::Range<usize> = 8..12;
pub const BUSINESS: std::ops::Range<usize> = 12..16;

/// Index of each factor by name.
pub fn factor_index(name: &str) -> Option<usize> {
    FACTORS.iter().position(|f| *f == name)
}

/// Factor values, each optional (a file gives some, defaults fill the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Factors(pub [Option<u8>; 16]);

impl Factors {
    pub fn set(&mut self, name: &str, v: u8) -> bool {
        match factor_index(name) {
            Some(i) => {
                self.0[i] = Some(v);
                true
            }
            None => false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub fn of(score: f64) -> Self {
        if score < 3.0 {
            Level::Low
        } else if score < 6.0 {
            Level::Medium
        } else {
            Level::High
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Note,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const NAMES: &'static [&'static str] = &["note", "low", "medium", "high", "critical"];

    /// The methodology's matrix.
    pub fn of(likelihood: Level, impact: Level) -> Self {
        use Level as L;
        match (impact, likelihood) {
            (L::High, L::Low) => Severity::Medium,
            (L::High, L::Medium) => Severity::High,
            (L::High, L::High) => Severity::Critical,
            (L::Medium, L::Low) => Severity::Low,
            (L::Medium, L::Medium) => Severity::Medium,
            (L::Medium, L::High) => Severity::High,
            (L::Low, L::Low) => Severity::Note,
            (L::Low, L::Medium) => Severity::Low,
            (L::Low, L::High) => Severity::Medium,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::NAMES.iter().position(|n| *n == s).map(|i| match i {
            0 => Severity::Note,
            1 => Severity::Low,
            2 => Severity::Medium,
            3 => Severity::High,
            _ => Severity::Critical,
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rating computed from complete factors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub likelihood: f64,
    pub impact: f64,
    pub likelihood_level: Level,
    pub impact_level: Level,
    pub severity: Severity,
}

fn average(values: impl Iterator<Item = u8>) -> Option<f64> {
    let (sum, n) = values.fold((0u32, 0u32), |(s, n), v| (s + u32::from(v), n + 1));
    (n > 0).then(|| f64::from(sum) / f64::from(n))
}

/// Rates factors: each average is over the factors given; business factors are used only when
/// at least one is given.
pub fn rate(f: &Factors) -> Score {
    let likelihood = average(LIKELIHOOD.filter_map(|i| f.0[i])).unwrap_or(0.0);
    let technical = average(TECHNICAL.filter_map(|i| f.0[i])).unwrap_or(0.0);
    let impact = average(BUSINESS.filter_map(|i| f.0[i])).unwrap_or(technical);
    let likelihood_level = Level::of(likelihood);
    let impact_level = Level::of(impact);
    Score {
        likelihood,
        impact,
        likelihood_level,
        impact_level,
        severity: Severity::of(likelihood_level, impact_level),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factors(values: &[(usize, u8)]) -> Factors {
        let mut f = Factors::default();
        for (i, v) in values {
            f.0[*i] = Some(*v);
        }
        f
    }

    /// The methodology's worked example: likelihood factors 5 2 7 1 3 6 9 2 (4.375, MEDIUM);
    /// technical impact 9 7 5 8 (7.25, HIGH); business impact 1 2 1 5 (2.25, LOW). "From a purely
    /// technical perspective it appears that the overall severity is high. However, note that the
    /// business impact is actually low, so the overall severity is best described as low."
    #[test]
    fn owasp_worked_example() {
        let l = [5, 2, 7, 1, 3, 6, 9, 2];
        let t = [9, 7, 5, 8];
        let b = [1, 2, 1, 5];
        let mut all: Vec<(usize, u8)> = l.iter().enumerate().map(|(i, v)| (i, *v)).collect();
        all.extend(t.iter().enumerate().map(|(i, v)| (8 + i, *v)));
        let technical_only = rate(&factors(&all));
        assert_eq!(technical_only.likelihood, 4.375);
        assert_eq!(technical_only.likelihood_level, Level::Medium);
        assert_eq!(technical_only.impact, 7.25);
        assert_eq!(technical_only.impact_level, Level::High);
        assert_eq!(technical_only.severity, Severity::High);
        all.extend(b.iter().enumerate().map(|(i, v)| (12 + i, *v)));
        let with_business = rate(&factors(&all));
        assert_eq!(with_business.impact, 2.25);
        assert_eq!(with_business.impact_level, Level::Low);
        assert_eq!(with_business.severity, Severity::Low);
    }

    #[test]
    fn levels_and_matrix() {
        assert_eq!(Level::of(0.0), Level::Low);
        assert_eq!(Level::of(2.99), Level::Low);
        assert_eq!(Level::of(3.0), Level::Medium);
        assert_eq!(Level::of(5.99), Level::Medium);
        assert_eq!(Level::of(6.0), Level::High);
        assert_eq!(Level::of(9.0), Level::High);
        use Level::*;
        let grid = [
            (Low, Low, Severity::Note),
            (Medium, Low, Severity::Low),
            (High, Low, Severity::Medium),
            (Low, Medium, Severity::Low),
            (Medium, Medium, Severity::Medium),
            (High, Medium, Severity::High),
            (Low, High, Severity::Medium),
            (Medium, High, Severity::High),
            (High, High, Severity::Critical),
        ];
        for (likelihood, impact, want) in grid {
            assert_eq!(
                Severity::of(likelihood, impact),
                want,
                "{likelihood:?}/{impact:?}"
            );
        }
    }

    #[test]
    fn unrated_factors_are_left_out_of_the_averages() {
        let s = rate(&factors(&[(0, 8), (1, 6), (8, 9)]));
        assert_eq!(s.likelihood, 7.0);
        assert_eq!(s.impact, 9.0);
        assert_eq!(s.severity, Severity::Critical);
        let none = rate(&Factors::default());
        assert_eq!(
            (none.likelihood, none.impact, none.severity),
            (0.0, 0.0, Severity::Note)
        );
    }
}
