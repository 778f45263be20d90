"""Geodesics: shortest curves under a metric. [Lecture 3]

Contract (being implemented):
    geodesic(G, z0, z1, T=32, *, init=None, max_iter=..., tol=None) -> GeodesicResult with fields
        curve (B, T, d), length (B,), energy (B,), converged (B,) bool, iterations (B,) long
    shoot(G, z0, v0, T=32) -> curve (B, T, d) solving c̈ᵏ = −Γᵏ_ij ċⁱ ċʲ from c(0)=z0, ċ(0)=v0
    exp_map(G, z0, v0) -> (B, d)
    graph_geodesic(G, Z, z0, z1, T=32, k=8) -> curves (B, T, d) along shortest k-NN-graph paths
    distance(G, z0, z1, **kw) -> (B,);  distance_matrix(G, Z, **kw) -> (N, N)
"""
__all__: list[str] = []
