//! tier-transition (Predict): per member, the probability of each of the twelve tier
//! transitions over the program horizon, its likely date and an 80% interval, calibrated
//! against resolved past forecasts (DESIGN section 4).

pub mod calibrate;
pub mod forecast;
