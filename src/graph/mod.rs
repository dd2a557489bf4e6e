pub struct Graph;
