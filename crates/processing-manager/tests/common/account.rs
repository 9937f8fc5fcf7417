//! The bank account that the manager tests register as a custom shared type: the crate's
//! in-process tests and the root suite's cross-process ones (which include this file by path)
//! add their own extra methods and proxies.

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Account {
    pub(crate) balance: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum BankError {
    Insufficient { missing: i64 },
}

impl Account {
    pub(crate) fn deposit(&mut self, amount: i64) -> i64 {
        self.balance += amount;
        self.balance
    }
    pub(crate) fn withdraw(&mut self, amount: i64) -> Result<i64, BankError> {
        if amount > self.balance {
            return Err(BankError::Insufficient {
                missing: amount - self.balance,
            });
        }
        self.balance -= amount;
        Ok(self.balance)
    }
    pub(crate) fn balance(&self) -> i64 {
        self.balance
    }
}
