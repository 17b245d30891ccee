//! A pack's `result` compiled to regorus's bytecode (its RVM): the fast path for sweeps.
//!
//! The interpreter walks the policy's syntax tree on every evaluation; the compiled program runs
//! the same rules about twice as fast on the CIS packs (see BENCHMARKS.md). The compiler
//! does not take every policy (regorus 0.14 refuses, for one, partial object rules with constant
//! keys such as `result["x"] := …`), so a pack it refuses is evaluated by the interpreter, as
//! before, and `packs lint` says why.

use std::sync::Arc;

use regorus::rvm::{Program, RegoVM};

use super::pool::Pool;

/// Instructions one evaluation may execute before it is stopped (a runaway loop in a pack,
/// not a large host: the CIS packs execute about 200,000 on a real host).
const MAX_INSTRUCTIONS: usize = 50_000_000;

pub struct CompiledResult {
    policy: regorus::CompiledPolicy,
    program: Arc<Program>,
    entry: String,
    idle: Pool<RegoVM>,
}

impl CompiledResult {
    /// Compiles rule `entry` (e.g. `data.rampart.pack.x.result`) of the policies in `engine`;
    /// `Err` says why the compiler refused.
    pub fn compile(engine: &regorus::Engine, entry: &str) -> Result<Self, String> {
        let mut engine = engine.clone();
        let rule: regorus::Rc<str> = entry.into();
        let policy = engine
            .compile_with_entrypoint(&rule)
            .map_err(|e| e.to_string())?;
        let program =
            regorus::languages::rego::compiler::Compiler::compile_from_policy(&policy, &[entry])
                .map_err(|e| first_line(&e.to_string()))?;
        let compiled = Self {
            policy,
            program,
            entry: entry.to_string(),
            idle: Pool::new(),
        };
        // A program that compiles but cannot run (an unsupported instruction at run time) is
        // refused here, not on the first host.
        compiled.evaluate(regorus::Value::new_object())?;
        Ok(compiled)
    }

    /// The entry rule's value over `input`.
    pub fn evaluate(&self, input: regorus::Value) -> Result<regorus::Value, String> {
        self.idle.with(
            || self.machine(),
            input,
            |vm| {
                vm.execute_entry_point_by_name(&self.entry)
                    .map_err(|e| e.to_string())
            },
        )?
    }

    fn machine(&self) -> Result<RegoVM, String> {
        let mut vm = RegoVM::new_with_policy(self.policy.clone());
        vm.load_program(self.program.clone());
        // As the interpreter is set up: a builtin that fails leaves its expression undefined.
        vm.set_strict_builtin_errors(false);
        vm.set_max_instructions(MAX_INSTRUCTIONS);
        vm.set_data(regorus::Value::new_object())
            .map_err(|e| e.to_string())?;
        Ok(vm)
    }
}

/// The compiler's errors carry the source excerpt after their first line; the first says it.
fn first_line(message: &str) -> String {
    let lines: Vec<&str> = message.lines().map(str::trim).collect();
    match lines.iter().position(|l| l.starts_with("error:")) {
        Some(i) => {
            let at = lines.iter().find_map(|l| l.strip_prefix("-->"));
            let what = lines[i].trim_start_matches("error:").trim();
            match at {
                Some(at) => format!("{what} (at {})", at.trim()),
                None => what.to_string(),
            }
        }
        None => message.trim().to_string(),
    }
}
