//! The pages in process (tower `oneshot`) over the fakes of the merchant API's tests.
