//! The original package's first example: a child puts `hello world` on a queue and the parent
//! prints it.

use processing::process::Process;
use processing::transport::queue::Queue;

fn f(q: Queue<String>) {
    q.put("hello world".to_string()).expect("queue put");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let q = Queue::new()?;
    let mut p = Process::new(f, q.clone());
    p.start()?;
    println!("{}", q.get()?);
    p.join()?;
    Ok(())
}
