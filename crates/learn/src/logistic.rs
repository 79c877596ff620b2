//! L2-regularised logistic regression on 0/1 indicators, fitted by Newton's method: minimises
//! `Σ log(1 + e^z) − y·z + λ/2 · |w|²` with an unpenalised intercept — scikit-learn's
//! `LogisticRegression(C = 1/λ)`, whose optimum it reaches (see the tests).

use crate::encode::Design;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Fit {
    pub intercept: f64,
    pub weights: Vec<f64>,
    pub iterations: usize,
}

impl Fit {
    pub fn logit(&self, active: &[u32]) -> f64 {
        self.intercept
            + active
                .iter()
                .map(|index| self.weights[*index as usize])
                .sum::<f64>()
    }

    pub fn predict(&self, active: &[u32]) -> f64 {
        engine::model::sigmoid(self.logit(active))
    }
}

const MAX_ITERATIONS: usize = 100;

/// `log(1 + e^z)` without overflow.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

fn objective(design: &Design, theta: &[f64], lambda: f64) -> f64 {
    let mut loss = 0.0;
    for row in 0..design.rows() {
        let z = theta[0]
            + design
                .row(row)
                .iter()
                .map(|index| theta[*index as usize + 1])
                .sum::<f64>();
        loss += softplus(z) - if design.labels[row] { z } else { 0.0 };
    }
    loss + lambda / 2.0 * theta[1..].iter().map(|w| w * w).sum::<f64>()
}

/// Fits the model; `width` is the number of indicators.
pub(crate) fn fit(design: &Design, width: usize, lambda: f64) -> Fit {
    let size = width + 1;
    let mut theta = vec![0.0; size];
    let positives = design.labels.iter().filter(|won| **won).count() as f64;
    let rate = ((positives + 0.5) / (design.rows() as f64 + 1.0)).clamp(1e-6, 1.0 - 1e-6);
    theta[0] = (rate / (1.0 - rate)).ln();
    let mut current = objective(design, &theta, lambda);
    let mut hessian = vec![0.0; size * size];
    let mut gradient = vec![0.0; size];
    let mut iterations = 0;
    while iterations < MAX_ITERATIONS {
        iterations += 1;
        hessian.iter_mut().for_each(|cell| *cell = 0.0);
        gradient.iter_mut().for_each(|cell| *cell = 0.0);
        for row in 0..design.rows() {
            let active = design.row(row);
            let z = theta[0]
                + active
                    .iter()
                    .map(|index| theta[*index as usize + 1])
                    .sum::<f64>();
            let mu = engine::model::sigmoid(z);
            let residual = mu - if design.labels[row] { 1.0 } else { 0.0 };
            let curvature = (mu * (1.0 - mu)).max(1e-12);
            gradient[0] += residual;
            hessian[0] += curvature;
            for (position, a) in active.iter().enumerate() {
                let a = *a as usize + 1;
                gradient[a] += residual;
                hessian[a] += curvature;
                let line = &mut hessian[a * size..(a + 1) * size];
                line[a] += curvature;
                for b in &active[position + 1..] {
                    line[*b as usize + 1] += curvature;
                }
            }
        }
        for index in 1..size {
            gradient[index] += lambda * theta[index];
            hessian[index * size + index] += lambda;
        }
        // Only the upper triangle (and row 0) was filled: mirror it.
        for a in 0..size {
            for b in a + 1..size {
                let upper = hessian[a * size + b];
                hessian[b * size + a] = upper;
            }
        }
        let Some(step) = solve(&mut hessian, &gradient, size) else {
            break;
        };
        let mut scale = 1.0;
        let mut accepted = false;
        for _ in 0..30 {
            let trial: Vec<f64> = theta
                .iter()
                .zip(&step)
                .map(|(value, delta)| value - scale * delta)
                .collect();
            let loss = objective(design, &trial, lambda);
            if loss <= current + 1e-12 * current.abs() {
                theta = trial;
                let improvement = current - loss;
                current = loss;
                accepted = true;
                if improvement <= 1e-10 * current.abs().max(1.0) {
                    iterations = MAX_ITERATIONS.max(iterations);
                }
                break;
            }
            scale /= 2.0;
        }
        let largest = step.iter().fold(0.0f64, |max, delta| max.max(delta.abs())) * scale;
        if !accepted || largest < 1e-9 {
            break;
        }
    }
    Fit {
        intercept: theta[0],
        weights: theta[1..].to_vec(),
        iterations: iterations.min(MAX_ITERATIONS),
    }
}

/// Solves `H x = g` for a symmetric positive definite `H` (row-major, overwritten by its
/// Cholesky factor). `None` if it is not positive definite.
fn solve(matrix: &mut [f64], rhs: &[f64], size: usize) -> Option<Vec<f64>> {
    for j in 0..size {
        let mut diagonal = matrix[j * size + j];
        for k in 0..j {
            diagonal -= matrix[j * size + k] * matrix[j * size + k];
        }
        if diagonal <= 0.0 || !diagonal.is_finite() {
            return None;
        }
        let diagonal = diagonal.sqrt();
        matrix[j * size + j] = diagonal;
        for i in j + 1..size {
            let (upper, lower) = matrix.split_at_mut(i * size);
            let row_j = &upper[j * size..j * size + j];
            let row_i = &mut lower[..size];
            let dot: f64 = row_i[..j].iter().zip(row_j).map(|(a, b)| a * b).sum();
            row_i[j] = (row_i[j] - dot) / diagonal;
        }
    }
    let mut y = rhs.to_vec();
    for i in 0..size {
        let dot: f64 = (0..i).map(|k| matrix[i * size + k] * y[k]).sum();
        y[i] = (y[i] - dot) / matrix[i * size + i];
    }
    for i in (0..size).rev() {
        let dot: f64 = (i + 1..size).map(|k| matrix[k * size + i] * y[k]).sum();
        y[i] = (y[i] - dot) / matrix[i * size + i];
    }
    Some(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two indicators; rows (active, label). The reference optimum is scikit-learn 1.9's
    /// `LogisticRegression(C=1.0, tol=1e-12, max_iter=10000)` on the same one-hot data:
    ///
    /// ```python
    /// X = [[1,0],[1,0],[1,0],[1,0],[0,1],[0,1],[0,1],[0,0],[0,0],[1,1]]
    /// y = [1,1,1,0,0,0,1,0,1,1]
    /// ```
    #[test]
    fn it_reaches_scikit_learns_optimum() {
        let rows: [(&[u32], bool); 10] = [
            (&[0], true),
            (&[0], true),
            (&[0], true),
            (&[0], false),
            (&[1], false),
            (&[1], false),
            (&[1], true),
            (&[], false),
            (&[], true),
            (&[0, 1], true),
        ];
        let mut design = Design::default();
        design.offsets.push(0);
        for (active, label) in rows {
            design.indices.extend_from_slice(active);
            design.offsets.push(design.indices.len());
            design.labels.push(label);
        }
        let fit = fit(&design, 2, 1.0);
        // scikit-learn: intercept_ [0.18090414], coef_ [[ 0.60328616 -0.16346374]]
        assert!((fit.intercept - 0.180_904_14).abs() < 1e-6, "{fit:?}");
        assert!((fit.weights[0] - 0.603_286_16).abs() < 1e-6, "{fit:?}");
        assert!((fit.weights[1] + 0.163_463_74).abs() < 1e-6, "{fit:?}");
    }
}
