import CORSPolicy
