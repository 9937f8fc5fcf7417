//! A list shared through a manager: filled by a child process, reversed by the server.
//!
//! Prints `[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]`.

use processing::manager::{ListProxy, Manager};
use processing::Process;

fn fill(list: ListProxy<u32>) {
    for i in 0..10 {
        list.push(i).expect("push");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Manager::start()?;
    let list = manager.list::<u32>()?;
    let mut child = Process::new(fill, list.clone());
    child.start()?;
    child.join()?;
    list.reverse()?;
    println!("{:?}", list.to_vec()?);
    Ok(())
}
