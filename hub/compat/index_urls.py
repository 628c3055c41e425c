app_name = "adapterhub_index"
urlpatterns: list = []
