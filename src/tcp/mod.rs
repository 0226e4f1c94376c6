pub mod cookie;
