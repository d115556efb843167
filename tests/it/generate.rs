//! `aftershock generate`: synthetic scenarios of any size are valid, runnable and reproducible.

use crate::support::{report, scenario};

#[test]
fn generated_scenarios_are_valid_runnable_and_reproducible() {
    for (services, plans) in [(12, 1), (40, 5), (200, 8)] {
        let text = aftershock::generate::scenario(services, plans, 7);
        assert_eq!(text, aftershock::generate::scenario(services, plans, 7));
        let s = scenario(&text);
        assert_eq!(s.topology.services.len(), services);
        assert_eq!(s.plans.len(), plans);
        // Every generic service is reachable from the edge through the layers.
        assert!(
            s.topology.deps.len() >= services - 4,
            "{}",
            s.topology.deps.len()
        );
        if services <= 40 {
            let r = report(&s, 3, 2);
            assert_eq!(r.plans.len(), plans);
            assert!(r.plans[0].metrics.iter().all(|(_, m)| !m.mean.is_nan()));
        }
    }
    assert_ne!(
        aftershock::generate::scenario(40, 5, 1),
        aftershock::generate::scenario(40, 5, 2)
    );
}
