//! Test-only crash points of the coordinator. In builds with the `fault-injection` feature, the environment
//! variable `VHSM_FAULT_EXIT_AT` may name one point; the coordinator exits there at once, as if killed. Other
//! builds have no crash points.

/// Exits the process if `VHSM_FAULT_EXIT_AT` names `point` (fault-injection builds only).
pub fn exit_if(point: &str) {
    #[cfg(feature = "fault-injection")]
    if std::env::var("VHSM_FAULT_EXIT_AT").is_ok_and(|p| p == point) {
        tracing::error!(point, "fault injection: the coordinator exits here");
        std::process::exit(86);
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = point;
}
