print("cors-proxy")
