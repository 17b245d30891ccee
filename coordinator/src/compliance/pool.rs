//! Idle evaluators (interpreter engines, compiled-program machines) kept for reuse: setting one
//! up costs more than an evaluation, and a sweep evaluates host after host.

use std::sync::Mutex;

/// Evaluators kept idle at most; more threads than this evaluating at once make their own,
/// dropped after use.
const KEEP: usize = 16;

/// An evaluator whose input can be set and cleared.
pub(crate) trait Evaluator {
    fn set_input(&mut self, input: regorus::Value);
}

impl Evaluator for regorus::Engine {
    fn set_input(&mut self, input: regorus::Value) {
        regorus::Engine::set_input(self, input);
    }
}

impl Evaluator for regorus::rvm::RegoVM {
    fn set_input(&mut self, input: regorus::Value) {
        regorus::rvm::RegoVM::set_input(self, input);
    }
}

pub(crate) struct Pool<T> {
    idle: Mutex<Vec<T>>,
}

impl<T: Evaluator> Pool<T> {
    pub(crate) fn new() -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `work` on an idle evaluator (or one `make` sets up) whose input is `input`, then
    /// clears the input, so no host's facts stay in an idle evaluator, and keeps it.
    pub(crate) fn with<R, E>(
        &self,
        make: impl FnOnce() -> Result<T, E>,
        input: regorus::Value,
        work: impl FnOnce(&mut T) -> R,
    ) -> Result<R, E> {
        let pooled = self.idle.lock().map(|mut idle| idle.pop()).unwrap_or(None);
        let mut evaluator = match pooled {
            Some(e) => e,
            None => make()?,
        };
        evaluator.set_input(input);
        let out = work(&mut evaluator);
        evaluator.set_input(regorus::Value::new_object());
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < KEEP
        {
            idle.push(evaluator);
        }
        Ok(out)
    }

    /// How many evaluators are idle now.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.idle.lock().map(|idle| idle.len()).unwrap_or(0)
    }
}
