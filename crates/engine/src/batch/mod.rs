//! Batch assignment (批量最优分配): a backlog placed as a whole by expected value under caps
//! and fairness, instead of lead by lead in arrival order.

pub mod solve;
