// `sqlx::migrate!` embeds the migrations folder at compile time; without this, cargo does not
// notice a new migration file and an incremental build keeps the old list.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
