//! JUnit XML for a check: one test suite per scenario, one test case per expectation, plus a
//! `baseline` case when a baseline was compared, or a single `run` case with an error when the
//! scenario could not run. No timestamps or durations, so the file is deterministic.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::ScenarioCheck;

fn num(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else {
        format!("{v}")
    }
}

/// [`num`], `>=` in front when the side is a lower bound.
fn side(v: f64, e: &super::ExpectationCheck, name: &str) -> String {
    if e.lower_bounds.contains(&name) && !v.is_nan() {
        format!(">= {}", num(v))
    } else {
        num(v)
    }
}

/// Renders the JUnit XML document.
pub fn render(checks: &[ScenarioCheck]) -> String {
    let mut report = Report::new("aftershock check");
    for c in checks {
        let name = if c.scenario.is_empty() {
            c.file.clone()
        } else {
            c.scenario.clone()
        };
        let mut suite = TestSuite::new(name.clone());
        suite.add_property(("file", c.file.as_str()));
        suite.add_property(("seed", c.seed.to_string().as_str()));
        suite.add_property(("trials", c.trials.to_string().as_str()));
        if let Some(err) = &c.error {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message("the scenario could not run");
            status.set_type("could-not-run");
            status.set_description(err.as_str());
            let mut case = TestCase::new("run", status);
            case.set_classname(name.as_str());
            suite.add_test_case(case);
            report.add_test_suite(suite);
            continue;
        }
        for e in &c.expectations {
            let status = if e.passed {
                TestCaseStatus::success()
            } else if let Some(why) = &e.error {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(format!("cannot be evaluated: {why}"));
                s.set_type("invalid-expectation");
                s
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!(
                    "measured {} vs threshold {} (margin {}){}",
                    side(e.measured, e, "measured"),
                    side(e.threshold, e, "threshold"),
                    num(e.margin),
                    if e.decided {
                        ""
                    } else {
                        ", undecided: censored"
                    }
                ));
                s.set_type(if e.decided {
                    "expectation-failed"
                } else {
                    "expectation-undecided"
                });
                let mut text = format!(
                    "{}\nmeasured: {}\nthreshold: {}\nmargin: {}\n",
                    e.expr,
                    side(e.measured, e, "measured"),
                    side(e.threshold, e, "threshold"),
                    num(e.margin)
                );
                if let Some(note) = &e.censoring {
                    text.push_str(&format!("censored: {note}\n"));
                }
                if let Some(w) = &e.worst_trial {
                    text.push_str(&format!(
                        "worst trial: {} of plan {} ({})\nreplay: {}\n",
                        w.trial,
                        w.plan,
                        num(w.value),
                        w.replay
                    ));
                }
                s.set_description(text);
                s
            };
            let mut case = TestCase::new(e.expr.as_str(), status);
            case.set_classname(name.as_str());
            case.add_property(("measured", num(e.measured).as_str()));
            case.add_property(("threshold", num(e.threshold).as_str()));
            if !e.lower_bounds.is_empty() {
                case.add_property(("lower_bounds", e.lower_bounds.join(",").as_str()));
            }
            suite.add_test_case(case);
        }
        if let Some(b) = &c.baseline {
            let status = if b.passed() {
                TestCaseStatus::success()
            } else {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(format!(
                    "{} regression(s) against the baseline",
                    b.regressions.len()
                ));
                s.set_type("baseline-regression");
                let lines: Vec<String> = b
                    .regressions
                    .iter()
                    .map(|r| format!("{}: {}", r.what, r.message))
                    .collect();
                s.set_description(lines.join("\n"));
                s
            };
            let mut case = TestCase::new("baseline", status);
            case.set_classname(name.as_str());
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- cannot render JUnit: {e} -->\n"))
}
